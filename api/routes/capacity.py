"""``/capacity`` and ``/reservations``: what the fleet declares, holds and has free, now and over a window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.auth import Principal, Role, require
from api.deps import ReadYourWrites, get_container
from api.problems import ApiProblem
from api.schemas import PROBLEM_RESPONSES, Cursor, Limit, paged
from api.schemas.checked import Instant
from api.schemas.workers import CapacityOut, ReservationPage
from domain.instants import LATEST
from domain.naming import MAX_NAME_LENGTH
from projections.readmodels.workers import WorkerQueries

router = APIRouter(tags=["capacity"], responses=PROBLEM_RESPONSES)

Readers = Annotated[Principal, Depends(require(Role.INSTRUCTOR))]
From = Annotated[Instant | None, Query(alias="from", description="window start (RFC 3339); default now")]
To = Annotated[Instant | None, Query(alias="to", description="window end (RFC 3339, exclusive); default from + 24 h")]
DEFAULT_WINDOW = timedelta(hours=24)


def _window(now: datetime, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    # ``Instant`` has held both to RFC 3339 in range; the default end must stay in range too.
    start = start or now
    end = end or min(start + DEFAULT_WINDOW, LATEST)
    if end <= start:
        raise ApiProblem(422, "Invalid input", "to: must be after from", field="to")
    return start, end


@router.get("/capacity", response_model=CapacityOut, summary="Declared, reserved and free capacity")
def capacity(
    request: Request, _: Readers, __: ReadYourWrites, start: From = None, end: To = None,
    template: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    worker_id: Annotated[str | None, Query(max_length=100)] = None,
) -> dict:
    container = get_container(request)
    now = container.clock.now()
    window = _window(now, start, end)
    return WorkerQueries(container.read_models).capacity(now, *window, template_name=template, worker_id=worker_id)


@router.get("/reservations", response_model=ReservationPage,
            summary="Reservations overlapping [from, to), by hold start")
def reservations(
    request: Request, _: Readers, __: ReadYourWrites, start: From = None, end: To = None,
    worker_id: Annotated[str | None, Query(max_length=100)] = None,
    instance_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    container = get_container(request)
    now = container.clock.now()
    window = _window(now, start, end)
    page = paged(lambda: WorkerQueries(container.read_models).reservations(
        now, *window, worker_id=worker_id, instance_id=instance_id, limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}
