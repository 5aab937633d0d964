"""``/projections``: read-model status, and the parked (dead-letter) events an admin resolves.

An event a read model could not apply is parked (projections/parking.py) and the model goes
on; ``/readyz`` is not ready until an admin retries it (after a fix: applied now) or skips it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from api.auth import Principal, Role, require
from api.deps import get_container
from api.problems import ApiProblem
from api.schemas.instances import problems
from projections.parking import PARKED_STATUS, list_parked
from projections.resolving import ParkedRetryFailed

router = APIRouter(prefix="/projections", tags=["projections"])

Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Position = Annotated[int, Path(ge=1, le=2**62)]


class ParkedOut(BaseModel):
    projection: str
    position: int
    stream_id: str
    version: int
    event_type: str
    error: str
    stage: str
    status: str
    parked_at: str
    attempts: int


class ParkedList(BaseModel):
    items: list[ParkedOut]


@router.get("", summary="Each read model: version, position, lag, parked events, rebuild progress")
def status(request: Request, _: Admin) -> dict[str, Any]:
    return {"items": get_container(request).projection_status()}


@router.get("/parked", response_model=ParkedList, responses=problems(401, 403, 422),
            summary="Events parked by a read model (not applied), oldest first")
def parked(
    request: Request, _: Admin,
    projection: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    status: Annotated[str, Query(pattern=r"^(parked|skipped|retried|all)$")] = PARKED_STATUS,
) -> dict[str, Any]:
    found = list_parked(get_container(request).read_models, projection, None if status == "all" else status)
    return {"items": [p.to_dict() for p in found]}


@router.post("/{name}/parked/{position}/retry", response_model=ParkedOut, responses=problems(401, 403, 404, 409),
             summary="Apply a parked event now (e.g. after a fix); 409 if it fails again (stays parked)")
def retry(request: Request, _: Admin, name: Name, position: Position) -> dict[str, Any]:
    runner = get_container(request).projection_runner
    try:
        return runner.retry_parked(name, position).to_dict()
    except KeyError as error:
        raise ApiProblem(404, "Not found", str(error).strip("'\"")) from None
    except ParkedRetryFailed as error:
        raise ApiProblem(409, "Conflict", f"the event still fails: {error}") from None


@router.post("/{name}/parked/{position}/skip", response_model=ParkedOut, responses=problems(401, 403, 404),
             summary="Give up on a parked event: kept as skipped, no longer holds readiness")
def skip(request: Request, _: Admin, name: Name, position: Position) -> dict[str, Any]:
    runner = get_container(request).projection_runner
    try:
        return runner.skip_parked(name, position).to_dict()
    except KeyError as error:
        raise ApiProblem(404, "Not found", str(error).strip("'\"")) from None
