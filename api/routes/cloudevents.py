"""``POST /cloudevents``: CloudEvents from LDS and graders drive lablet instances (SPEC §7 "In").

Modes (by Content-Type, the HTTP binding rule): binary, structured, batch. One event:
202 with its result (accepted, duplicate, ignored), 409 when the instance's state does not
allow it, 400 when it is malformed, 415 for a format we cannot read, 403/404 when the
sender may not send it for that lab. A batch: 202 with one result per event, a refused
event carrying its problem (``result: rejected``); a malformed batch is refused whole (400).

As a web hook target (CloudEvents ``http-webhook.md``): ``OPTIONS /cloudevents`` answers
the abuse-protection handshake (``WebHook-Allowed-Origin``, ``WebHook-Allowed-Rate``); the
bearer token may come as ``Authorization: Bearer`` or as the ``access_token`` query
parameter; senders configured with a secret must sign (Standard Webhooks headers).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from adapters.cloudevents.parsing import MAX_BODY_BYTES, CloudEventParseError, parse_http
from adapters.webhooks.signing import SignatureInvalid, verify
from api.auth import Principal, Role, check_role, principal_for
from api.deps import context_for, get_container
from api.problems import PROBLEM_JSON, ApiProblem
from api.schemas.subscriptions import IngestOut
from domain.context import CommandContext
from domain.errors import DomainError, IllegalTransition, InvalidInput
from processors.commands.cloudevents import IncomingCloudEvent, Ingested

router = APIRouter(tags=["cloudevents"])

ACCESS_TOKEN = "access_token"
SENDER_ROLES = (Role.GRADER, Role.SERVICE)


def cloudevent_sender(request: Request) -> Principal:
    """The sender, from ``Authorization: Bearer`` or, as the web hook spec requires a target
    to accept, the ``access_token`` query parameter (RFC 6750 §2.3; not both at once).

    The query form puts the token in URLs, hence in the logs of any proxy in front of us:
    our own request log records the path only, and answers carry ``Cache-Control:
    private, no-store`` (see docs/operations/security.md)."""
    header = request.headers.get("authorization")
    query = request.query_params.getlist(ACCESS_TOKEN)
    if query and header:
        raise ApiProblem(400, "Bad request", "send the token once: Authorization header or access_token, not both",
                         field=ACCESS_TOKEN)
    if query:
        if len(query) > 1 or not query[0].strip():
            raise ApiProblem(400, "Bad request", "access_token must be given once and not be empty",
                             field=ACCESS_TOKEN)
        request.state.token_in_query = True
        return check_role(principal_for(request, query[0].strip()), SENDER_ROLES)
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "Unauthorized", "a bearer token is required (Authorization: Bearer, or access_token)",
                         headers={"WWW-Authenticate": "Bearer"})
    return check_role(principal_for(request, token.strip()), SENDER_ROLES)


Sender = Annotated[Principal, Depends(cloudevent_sender)]


def sender_context(request: Request, sender: Sender) -> CommandContext:
    return context_for(request, sender)


SenderCtx = Annotated[CommandContext, Depends(sender_context)]

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
async def receive(request: Request, response: Response, ctx: SenderCtx, sender: Sender) -> Any:
    if getattr(request.state, "token_in_query", False):
        response.headers["Cache-Control"] = "private, no-store"  # RFC 6750 §2.3
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return _problem(CloudEventParseError("body", f"larger than {MAX_BODY_BYTES} bytes", status=413))
    body = await request.body()
    container = get_container(request)
    _check_signature(container.settings.cloudevent_sender_secrets.get(sender.actor), request, body)
    try:
        parsed = parse_http(dict(request.headers), body)
    except CloudEventParseError as error:
        return _problem(error)
    events = [_incoming(e) for e in parsed.events]
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


def _check_signature(secrets: str | None, request: Request, body: bytes) -> None:
    """Signed ingestion: a sender configured with a secret (``LRM_CLOUDEVENT_SENDER_SECRETS``;
    several, space-separated, while it rotates) must sign each request as Standard Webhooks
    says; the bearer token alone is not enough for it."""
    if not secrets:
        return
    headers = dict(request.headers)
    reason = "no webhook-signature"
    for secret in secrets.split():
        try:
            verify(secret, headers, body)
            return
        except SignatureInvalid as invalid:
            reason = str(invalid)
    raise ApiProblem(401, "Unauthorized", f"this sender must sign its requests (Standard Webhooks): {reason}",
                     field="webhook-signature")


@router.options("/cloudevents", status_code=200, summary="Web hook abuse-protection handshake (no token needed)",
                responses={200: {"description": "granted: WebHook-Allowed-Origin and WebHook-Allowed-Rate"},
                           403: {"description": "this origin is not granted"}})
def handshake(request: Request) -> Response:
    """Answer the validation request of the CloudEvents web hook spec (§4.2): grant the
    origin if ``LRM_CLOUDEVENTS_ALLOWED_ORIGINS`` allows it, with our rate (the lower of
    ours and the one asked for)."""
    settings = get_container(request).settings
    headers = {"Allow": "POST, OPTIONS"}
    origin = request.headers.get("webhook-request-origin", "").strip()
    if not origin:
        return Response(status_code=200, headers=headers)  # a plain OPTIONS: what we accept
    allowed = [o.strip().lower() for o in settings.cloudevents_allowed_origins.split(",") if o.strip()]
    if "*" not in allowed and origin.lower() not in allowed:
        return JSONResponse({"type": "about:blank", "title": "Forbidden", "status": 403,
                             "detail": f"origin {origin!r} may not send events here"},
                            status_code=403, headers=headers, media_type=PROBLEM_JSON)
    headers["WebHook-Allowed-Origin"] = origin
    headers["WebHook-Allowed-Rate"] = _granted_rate(settings.cloudevents_allowed_rate,
                                                    request.headers.get("webhook-request-rate"))
    return Response(status_code=200, headers=headers)


def _granted_rate(ours: str, asked: str | None) -> str:
    asked = (asked or "").strip()
    if not asked.isdigit() or int(asked) <= 0:
        return ours
    return asked if ours == "*" else str(min(int(ours), int(asked)))


async def _in_thread(call: Any) -> Any:
    # Commands do blocking event-store I/O: keep the event loop free for other requests.
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(call)
