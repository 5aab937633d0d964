"""``/workers``: the fleet as admins see and steer it; ``timeline`` replays a worker's stream."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth import Principal, Role, require
from api.deps import Ctx, ReadYourWrites, get_container
from api.schemas import PROBLEM_RESPONSES, Cursor, Limit, paged
from api.schemas.templates import PositionOut
from api.schemas.workers import DrainIn, ProvisionIn, ReasonIn, TimelinePage, WorkerOut, WorkerPage, WorkerProvisionedOut
from domain.errors import NotFound
from domain.naming import MAX_NAME_LENGTH
from domain.worker import WorkerState
from processors.commands.workers import TEMPLATE_TIMEOUT as DEFAULT_TIMEOUT
from projections.readmodels.workers import WorkerQueries, worker_view

router = APIRouter(prefix="/workers", tags=["workers"], responses=PROBLEM_RESPONSES)

Readers = Annotated[Principal, Depends(require(Role.INSTRUCTOR))]
Admin = Annotated[Principal, Depends(require())]
WorkerId = Annotated[str, Path(max_length=100, description="Worker-<uuid>")]


def _queries(request: Request) -> WorkerQueries:
    return WorkerQueries(get_container(request).read_models)


@router.get("", response_model=WorkerPage, summary="List workers")
def list_workers(
    request: Request, _: Readers, __: ReadYourWrites,
    state: WorkerState | None = None,
    template: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    live: Annotated[bool | None, Query(description="true: not TERMINATED/FAILED")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    page = paged(lambda: _queries(request).list(
        state=state.value if state else None, template_name=template, live=live, limit=limit, cursor=cursor))
    now = get_container(request).clock.now()
    return {"items": [worker_view(doc, now) for doc in page.items], "next_cursor": page.next_cursor}


@router.get("/{worker_id}", response_model=WorkerOut, summary="Read one worker")
def get_worker(request: Request, worker_id: WorkerId, _: Readers, __: ReadYourWrites) -> dict:
    doc = _queries(request).get(worker_id)
    if doc is None:
        raise NotFound(f"worker {worker_id!r} not found")
    return worker_view(doc, get_container(request).clock.now())


@router.get("/{worker_id}/timeline", response_model=TimelinePage,
            summary="Every event of the worker's stream, in order (default page 500)")
def timeline(
    request: Request, worker_id: WorkerId, _: Readers, __: ReadYourWrites,
    limit: Annotated[int, Query(ge=1, le=500)] = 500, cursor: Cursor = None,
) -> dict:
    queries = _queries(request)
    if queries.get(worker_id) is None:
        raise NotFound(f"worker {worker_id!r} not found")
    page = paged(lambda: queries.timeline(worker_id, limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.post("", response_model=WorkerProvisionedOut, status_code=201,
             summary="Provision a worker from a template (PENDING; the worker controller launches it)")
def provision(request: Request, body: ProvisionIn, ctx: Ctx, _: Admin) -> dict:
    result = get_container(request).worker_service.provision(body.template, ctx, reason=body.reason)
    return {"id": result.worker_id, "state": WorkerState.PENDING.value, "position": result.position}


@router.post("/{worker_id}/drain", response_model=PositionOut, status_code=202,
             summary="RUNNING → DRAINING: accept nothing new, finish what it holds")
def drain(request: Request, worker_id: WorkerId, ctx: Ctx, _: Admin, body: DrainIn | None = None) -> dict:
    reason = body.reason if body else "admin"
    # Absent: the template's drain timeout; explicit null: no timeout (see DrainIn).
    timeout = body.timeout_hours if body is not None and "timeout_hours" in body.model_fields_set else DEFAULT_TIMEOUT
    return {"position": get_container(request).worker_service.drain(worker_id, ctx, reason=reason,
                                                                     timeout_hours=timeout)}


@router.post("/{worker_id}/cancel-drain", response_model=PositionOut, status_code=202,
             summary="DRAINING → RUNNING")
def cancel_drain(request: Request, worker_id: WorkerId, ctx: Ctx, _: Admin, body: ReasonIn | None = None) -> dict:
    reason = body.reason if body else "admin"
    return {"position": get_container(request).worker_service.cancel_drain(worker_id, ctx, reason=reason)}


@router.post("/{worker_id}/stop", response_model=PositionOut, status_code=202,
             summary="RUNNING/DRAINING → STOPPING; 409 while it holds an active lab")
def stop(request: Request, worker_id: WorkerId, ctx: Ctx, _: Admin, body: ReasonIn | None = None) -> dict:
    reason = body.reason if body else "admin"
    return {"position": get_container(request).worker_service.stop(worker_id, ctx, reason=reason)}
