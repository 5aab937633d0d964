"""``/classes``: book a class (every seat or none), read its seats, cancel, extend or collect it.

Instructors and services (an exam system) book and run classes, admins too; a service sees
only the classes it booked (others answer 404). See processors/commands/classes.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from api.auth import Principal, Role, require
from api.deps import Ctx, ReadYourWrites, get_container
from api.problems import ApiProblem
from api.routes.instances import caller
from api.schemas.classes import ClassBookedOut, ClassChangedOut, ClassIn, ClassMinutesIn, ClassOut
from api.schemas.instances import problems
from processors.commands.classes import ClassRequest
from processors.commands.instances import MAX_IDEMPOTENCY_KEY_LENGTH

router = APIRouter(prefix="/classes", tags=["classes"])
Runner = Annotated[Principal, Depends(require(Role.INSTRUCTOR, Role.SERVICE))]
ClassId = Annotated[str, Path(min_length=1, max_length=200, description="LabClass-<uuid>")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY_LENGTH)]
MAX_BODY_BYTES = 256 * 1024  # 500 owners of up to 200 characters, and the rest
COMMAND_PROBLEMS = problems(400, 401, 403, 404, 409, 413, 422)


def body_within_limit(request: Request) -> None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiProblem(413, "Payload too large", f"the body is {length} bytes; at most {MAX_BODY_BYTES}",
                         field="body")


@router.post("", status_code=201, response_model=ClassBookedOut, summary="Book a class: every seat or none",
             responses={200: {"model": ClassBookedOut, "description": "idempotent replay: the earlier class"},
                        **COMMAND_PROBLEMS}, dependencies=[Depends(body_within_limit)])
def book_class(request: Request, response: Response, body: ClassIn, ctx: Ctx, principal: Runner,
               idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    fields = body.model_dump()
    fields["owners"] = tuple(fields["owners"])
    booked = get_container(request).class_service.book(ClassRequest(**fields), caller(principal), ctx,
                                                       idempotency_key=idempotency_key)
    response.status_code = 201 if booked.created else 200
    return {"id": booked.class_id, "seats": booked.seats, "position": booked.position}


@router.get("/{class_id}", response_model=ClassOut, responses=problems(401, 403, 404, 422, 504),
            summary="A class and its seats (owner, instance, state), seat states from the read model")
def get_class(request: Request, class_id: ClassId, principal: Runner, _: ReadYourWrites) -> dict[str, Any]:
    container = get_container(request)
    lab_class = container.class_service.get(class_id, caller(principal))
    seats = []
    for seat in lab_class.seats:
        doc = container.instance_queries.get(seat["instance_id"]) or {}
        seats.append({"owner_id": seat["owner_id"], "instance_id": seat["instance_id"], "state": doc.get("state"),
                      "worker_id": doc.get("worker_id"), "timeslot_end": doc.get("timeslot_end")})
    return {**lab_class.summary(), "seats": seats,
            "by_state": dict(sorted(Counter(str(s["state"]) for s in seats).items()))}


def _changed(changed: Any) -> dict[str, Any]:
    return {"id": changed.class_id, "instance_ids": changed.instance_ids, "position": changed.position}


@router.delete("/{class_id}", status_code=202, response_model=ClassChangedOut, responses=COMMAND_PROBLEMS,
               summary="Cancel the class: every live seat terminated, its reservation released")
def cancel_class(request: Request, class_id: ClassId, ctx: Ctx, principal: Runner) -> dict[str, Any]:
    return _changed(get_container(request).class_service.cancel(class_id, caller(principal), ctx))


@router.post("/{class_id}/extend", status_code=202, response_model=ClassChangedOut, responses=COMMAND_PROBLEMS,
             summary="Every booked or running seat runs N minutes longer (all seats or none)")
def extend_class(request: Request, class_id: ClassId, body: ClassMinutesIn, ctx: Ctx,
                 principal: Runner) -> dict[str, Any]:
    return _changed(get_container(request).class_service.extend(class_id, body.minutes, caller(principal), ctx))


@router.post("/{class_id}/collect", status_code=202, response_model=ClassChangedOut, responses=COMMAND_PROBLEMS,
             summary="Every READY or RUNNING seat goes to collection for grading")
def collect_class(request: Request, class_id: ClassId, ctx: Ctx, principal: Runner) -> dict[str, Any]:
    return _changed(get_container(request).class_service.collect(class_id, caller(principal), ctx))
