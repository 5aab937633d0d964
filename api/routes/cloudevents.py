"""``POST /cloudevents``: CloudEvents from LDS and graders drive lablet instances (SPEC §7 "In").

Modes (by Content-Type, the HTTP binding rule): binary, structured, batch. One event:
202 with its result (accepted, duplicate, ignored), 409 when the instance's state does not
allow it, 400 when it is malformed. A batch: 202 with one result per event, a refused
event carrying its problem (``result: rejected``); a malformed batch is refused whole (400).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from adapters.cloudevents.parsing import MAX_BODY_BYTES, CloudEventParseError, parse_http
from api.auth import Principal, Role, require
from api.deps import Ctx, get_container
from api.problems import PROBLEM_JSON
from api.schemas.subscriptions import IngestOut
from domain.errors import DomainError, IllegalTransition, InvalidInput
from processors.commands.cloudevents import IncomingCloudEvent, Ingested

router = APIRouter(tags=["cloudevents"])

Sender = Annotated[Principal, Depends(require(Role.GRADER, Role.SERVICE))]

_REQUEST_BODY = {
    "content": {
        "application/cloudevents+json": {"schema": {"type": "object"}},
        "application/cloudevents-batch+json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "application/json": {"schema": {"description": "binary mode: the data; attributes in ce-* headers"}},
    },
    "required": True,
}


def _problem(error: CloudEventParseError) -> JSONResponse:
    return JSONResponse(error.problem(), status_code=error.status, media_type=PROBLEM_JSON)


def _incoming(event: Any) -> IncomingCloudEvent:
    data = event.get_data()
    if isinstance(data, (bytes, bytearray)):
        try:
            data = json.loads(data) if data else None
        except (ValueError, UnicodeDecodeError):
            data = None  # not JSON: no handled type needs opaque data
    correlation = event.get_extension("correlationid")
    return IncomingCloudEvent(
        id=event.get_id(), source=event.get_source(), type=event.get_type(), subject=event.get_subject(),
        data=data, correlation_id=str(correlation) if correlation else None,
    )


def _result(ingested: Ingested) -> dict[str, Any]:
    return {"id": ingested.id, "source": ingested.source, "type": ingested.type, "result": ingested.result,
            "instance_id": ingested.instance_id, "position": ingested.position, "detail": ingested.detail}


def _rejected(event: IncomingCloudEvent, error: DomainError) -> dict[str, Any]:
    problem: dict[str, Any] = {"type": "about:blank", "title": error.title, "status": error.status,
                               "detail": error.detail}
    if isinstance(error, InvalidInput):
        problem["errors"] = [{"field": error.field, "reason": error.reason}]
    if isinstance(error, IllegalTransition):
        problem.update(state=error.state, action=error.action)
    return {"id": event.id, "source": event.source, "type": event.type, "result": "rejected",
            "detail": error.detail, "problem": problem}


@router.post(
    "/cloudevents", response_model=IngestOut, status_code=202,
    summary="Receive CloudEvents (binary, structured or batch): lds.session.*, grading.session.*",
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def receive(request: Request, ctx: Ctx, _: Sender) -> Any:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return _problem(CloudEventParseError("body", f"larger than {MAX_BODY_BYTES} bytes", status=413))
    body = await request.body()
    try:
        parsed = parse_http(dict(request.headers), body)
    except CloudEventParseError as error:
        return _problem(error)
    events = [_incoming(e) for e in parsed.events]
    container = get_container(request)
    intake = container.cloudevent_intake
    if parsed.mode == "batch":
        outcomes = await _in_thread(lambda: intake.ingest_all(events, ctx))
        results = [
            _rejected(event, o) if isinstance(o, DomainError) else _result(o)
            for event, o in zip(events, outcomes, strict=True)
        ]
    else:
        # A refused single event raises: the problem handlers answer 409 / 400.
        results = [_result(await _in_thread(lambda: intake.ingest(events[0], ctx)))]
    positions = [r["position"] for r in results if r.get("position") is not None]
    position = max(positions) if positions else container.store.max_position()
    return {"mode": parsed.mode, "results": results, "position": position}


async def _in_thread(call: Any) -> Any:
    # Commands do blocking event-store I/O: keep the event loop free for other requests.
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(call)
