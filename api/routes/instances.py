"""``/instances``: request, list, count, read, drive (login, collect, stop, start), terminate, timeline, state-at.

Roles come from ``processors.commands.instances.ACTIONS`` (403 for a role that may never do
it); ownership is checked after that: a ``user`` sees only instances it owns and a
``service`` only those it requested, and anything else answers 404, exactly as for an id
that does not exist, so ids of other people's labs cannot be probed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from api.auth import Principal, Role, require
from api.deps import Ctx, ReadYourWrites, get_container
from api.problems import ApiProblem
from api.schemas import Cursor, Limit, paged
from api.schemas.checked import Instant
from api.schemas.instances import (
    InstanceAcceptedOut,
    InstanceCountsOut,
    InstanceOut,
    InstancePage,
    InstanceRequestIn,
    InstanceStateAtOut,
    TimelinePage,
    problems,
)
from domain.errors import NotFound
from domain.instance import InstanceState
from processors.commands.instances import (
    ACTIONS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    Caller,
    Changed,
    InstanceRequest,
    InstanceService,
)
from projections.readmodel import Document
from projections.readmodels.instances import InstanceQueries, instance_document
from projections.readmodels.timeline import TimelineQueries

router = APIRouter(prefix="/instances", tags=["instances"])


def _allowed(action: str):  # noqa: ANN202 - a FastAPI dependency
    return Depends(require(*(Role(role) for role in sorted(ACTIONS[action]) if role != "admin")))


Requester = Annotated[Principal, _allowed("request")]
Reader = Annotated[Principal, _allowed("read")]
MayLogin = Annotated[Principal, _allowed("login")]
MayCollect = Annotated[Principal, _allowed("collect")]
MayStop = Annotated[Principal, _allowed("stop")]
MayStart = Annotated[Principal, _allowed("start")]
MayTerminate = Annotated[Principal, _allowed("terminate")]
InstanceId = Annotated[str, Path(min_length=1, max_length=200, description="LabletInstance-<uuid>")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
           description="same key + same body → the same instance; same key + other body → 409"),
]
MAX_BODY_BYTES = 16 * 1024  # a request is a handful of short fields
READ_PROBLEMS = problems(401, 403, 404, 422, 504)
COMMAND_PROBLEMS = problems(401, 403, 404, 409, 422)


def body_within_limit(request: Request) -> None:
    """413 for a body far larger than any valid request (before its fields are looked at)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiProblem(413, "Payload too large", f"the body is {length} bytes; at most {MAX_BODY_BYTES}",
                         field="body")


def caller(principal: Principal) -> Caller:
    return Caller(principal.role.value, principal.subject)


def _service(request: Request) -> InstanceService:
    return get_container(request).instance_service


def _visible(request: Request, instance_id: str, principal: Principal) -> Document:
    """The read-model document, if this caller may see it (404 otherwise)."""
    doc = get_container(request).instance_queries.get(instance_id)
    if doc is None or not caller(principal).may_see(doc.get("owner_id"), doc.get("requested_by")):
        raise NotFound(f"instance {instance_id!r} not found")
    return doc


def _accepted(changed: Changed) -> dict[str, Any]:
    return {"id": changed.instance_id, "state": changed.state, "position": changed.position}


# -- commands -------------------------------------------------------------------------------
@router.post(
    "", status_code=201, response_model=InstanceAcceptedOut, summary="Request a lablet instance",
    responses={200: {"model": InstanceAcceptedOut, "description": "idempotent replay: the earlier instance"},
               **COMMAND_PROBLEMS, **problems(400, 413)},
    dependencies=[Depends(body_within_limit)],
)
def request_instance(
    request: Request, response: Response, body: InstanceRequestIn, ctx: Ctx, principal: Requester,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = _service(request).request(
        InstanceRequest(**body.model_dump()), caller(principal), ctx, idempotency_key=idempotency_key
    )
    response.status_code = 201 if result.created else 200
    return {"id": result.instance_id, "state": result.state, "position": result.position}


def _drive(request: Request, instance_id: str, principal: Principal, ctx: Any, action: str) -> dict[str, Any]:
    run = getattr(_service(request), action)
    return _accepted(run(instance_id, caller(principal), ctx))


@router.post("/{instance_id}/login", status_code=202, response_model=InstanceAcceptedOut,
             responses=COMMAND_PROBLEMS, summary="The user logged in: READY → RUNNING (STOPPED → RUNNING restarts)")
def login_instance(request: Request, instance_id: InstanceId, ctx: Ctx, principal: MayLogin) -> dict[str, Any]:
    return _drive(request, instance_id, principal, ctx, "login")


@router.post("/{instance_id}/collect", status_code=202, response_model=InstanceAcceptedOut,
             responses=COMMAND_PROBLEMS, summary="Collect evidence for grading: → COLLECTING (graded definitions)")
def collect_instance(request: Request, instance_id: InstanceId, ctx: Ctx, principal: MayCollect) -> dict[str, Any]:
    return _drive(request, instance_id, principal, ctx, "collect")


@router.post("/{instance_id}/stop", status_code=202, response_model=InstanceAcceptedOut,
             responses=COMMAND_PROBLEMS, summary="Stop the lab: → STOPPING")
def stop_instance(request: Request, instance_id: InstanceId, ctx: Ctx, principal: MayStop) -> dict[str, Any]:
    return _drive(request, instance_id, principal, ctx, "stop")


@router.post("/{instance_id}/start", status_code=202, response_model=InstanceAcceptedOut,
             responses=COMMAND_PROBLEMS, summary="Start a STOPPED lab again: → RUNNING")
def start_instance(request: Request, instance_id: InstanceId, ctx: Ctx, principal: MayStart) -> dict[str, Any]:
    return _drive(request, instance_id, principal, ctx, "start")


@router.delete(
    "/{instance_id}", status_code=202, response_model=InstanceAcceptedOut, responses=COMMAND_PROBLEMS,
    summary="Terminate: reason cancelled (user, service) or admin (admin, instructor); releases capacity",
)
def terminate_instance(request: Request, instance_id: InstanceId, ctx: Ctx, principal: MayTerminate) -> dict[str, Any]:
    return _accepted(_service(request).terminate(instance_id, caller(principal), ctx))


# -- queries --------------------------------------------------------------------------------
@router.get("", response_model=InstancePage, responses=READ_PROBLEMS, summary="List instances")
def list_instances(
    request: Request, principal: Reader, _: ReadYourWrites,
    state: Annotated[list[InstanceState] | None, Query(description="repeat for several")] = None,
    owner_id: Annotated[str | None, Query(max_length=200)] = None,
    worker_id: Annotated[str | None, Query(max_length=200)] = None,
    definition: Annotated[str | None, Query(max_length=200, description="definition name")] = None,
    reservation_id: Annotated[str | None, Query(max_length=200,
                                                description="the booking system's reference, exactly")] = None,
    time_from: Annotated[Instant | None, Query(alias="from",
                                                     description="booking window ends after this")] = None,
    time_to: Annotated[Instant | None, Query(alias="to",
                                                   description="booking window starts before this")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    if time_from is not None and time_to is not None and time_to <= time_from:
        raise ApiProblem(422, "Invalid input", "must be after 'from'", field="to")
    where: dict[str, Any] = {}
    if state:
        where["state"] = sorted({s.value for s in state})
    for name, value in (("owner_id", owner_id), ("worker_id", worker_id), ("definition_name", definition),
                        ("reservation_id", reservation_id)):
        if value is not None:
            where[name] = value
    for name, value in caller(principal).scope().items():
        if where.get(name, value) != value:
            return {"items": [], "next_cursor": None}  # asked for someone else's: none of theirs
        where[name] = value
    queries: InstanceQueries = get_container(request).instance_queries
    page = paged(lambda: queries.list(where=where, time_from=time_from, time_to=time_to, limit=limit,
                                      cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


# Before ``/{instance_id}``, which would otherwise take "counts" for an id.
@router.get("/counts", response_model=InstanceCountsOut, responses=READ_PROBLEMS,
            summary="How many instances are in each state (all for admin/instructor, one's own otherwise)")
def count_instances(request: Request, principal: Reader, _: ReadYourWrites) -> dict[str, Any]:
    queries: InstanceQueries = get_container(request).instance_queries
    by_state = queries.count_by_state(caller(principal).scope())
    return {"by_state": by_state, "total": sum(by_state.values())}


@router.get("/{instance_id}", response_model=InstanceOut, responses=READ_PROBLEMS, summary="Read one instance")
def get_instance(request: Request, instance_id: InstanceId, principal: Reader, _: ReadYourWrites) -> Document:
    return _visible(request, instance_id, principal)


@router.get(
    "/{instance_id}/timeline", response_model=TimelinePage, responses=READ_PROBLEMS,
    summary="Every event about the instance, in log order, explained",
)
def instance_timeline(
    request: Request, instance_id: InstanceId, principal: Reader, _: ReadYourWrites,
    limit: Annotated[int, Query(ge=1, le=500, description="page size (default and max 500)")] = 500,
    cursor: Cursor = None,
) -> dict[str, Any]:
    _visible(request, instance_id, principal)
    timeline: TimelineQueries = get_container(request).timeline_queries
    page = paged(lambda: timeline.of_instance(instance_id, limit=limit, cursor=cursor))
    return {"instance_id": instance_id, "items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/{instance_id}/state", response_model=InstanceStateAtOut, responses=READ_PROBLEMS,
    summary="The instance as it was at a moment (its stream replayed up to then)",
)
def instance_state_at(
    request: Request, instance_id: InstanceId, principal: Reader,
    at: Annotated[Instant, Query(description="RFC 3339 with a timezone")],
) -> dict[str, Any]:
    past = _service(request).state_at(instance_id, caller(principal), at)
    return {
        "as_of": at,
        "version": past.version,
        "instance": instance_document(past.instance, requested_by=past.requested_by),
    }
