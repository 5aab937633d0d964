"""``/scheduling``: placement decisions ("why did my lab land there / why is it still
pending") and the queue of PENDING instances, FIFO by start time.

Admins and instructors see everything; a user sees the decisions and queue entries of
the instances it owns (another user's instance answers 404, as if it did not exist).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from api.auth import Principal, Role, require
from api.deps import ReadYourWrites, get_container
from api.schemas import PROBLEM_RESPONSES, Cursor, Limit, paged
from api.schemas.scheduling import DecisionPage, QueuePage
from domain.errors import NotFound
from projections.readmodels.scheduling import SchedulingQueries

router = APIRouter(prefix="/scheduling", tags=["scheduling"], responses=PROBLEM_RESPONSES)

Reader = Annotated[Principal, Depends(require(Role.INSTRUCTOR, Role.USER))]


def _queries(request: Request) -> SchedulingQueries:
    return SchedulingQueries(get_container(request).read_models)


def _own_only(principal: Principal) -> str | None:
    """The owner a caller is limited to (None: sees all)."""
    return principal.subject if principal.role is Role.USER else None


@router.get("/decisions", response_model=DecisionPage,
            summary="Placement decisions: one instance's in order, or all newest first")
def decisions(
    request: Request, principal: Reader, _: ReadYourWrites,
    instance_id: Annotated[str | None, Query(max_length=200, description="LabletInstance-<uuid>")] = None,
    outcome: Literal["placed", "unplaceable"] | None = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    queries = _queries(request)
    owner = _own_only(principal)
    if instance_id is not None:
        doc = queries.instance(instance_id)
        if doc is None or (owner is not None and doc["owner_id"] != owner):
            raise NotFound(f"instance {instance_id!r} not found")
    page = paged(lambda: queries.decisions(instance_id=instance_id, owner_id=owner, outcome=outcome,
                                           limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/queue", response_model=QueuePage,
            summary="PENDING instances, FIFO by start time, with why each is still waiting")
def queue(request: Request, principal: Reader, _: ReadYourWrites, limit: Limit = 50, cursor: Cursor = None) -> dict:
    queries = _queries(request)
    page = paged(lambda: queries.queue(owner_id=_own_only(principal), limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}
