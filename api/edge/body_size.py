"""A request body may not exceed its route's limit, counted while it streams in (413).

The routes' own ``Content-Length`` checks cannot see a chunked body (no length), which
used to be read whole first: 30 MiB read, 60 MB of memory, for a body no route accepts.
Here the limit is enforced on the ASGI ``receive`` channel itself: a declared length over
the limit is refused before a byte is read, and a streamed body is cut off at the first
chunk that crosses it. The connection is then closed by the server (its rest is unread).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.cloudevents.parsing import MAX_BODY_BYTES as MAX_CLOUDEVENTS_BODY
from api.problems import problem
from api.routes.definitions import MAX_PUBLISH_BODY
from api.routes.instances import MAX_BODY_BYTES as MAX_INSTANCE_BODY

DEFAULT_LIMIT = 64 * 1024  # templates, workers, subscriptions, reasons: a few short fields
# (path prefix, limit, the field to blame): the first match wins; larger bodies only
# where a route needs them.
LIMITS: tuple[tuple[str, int, str], ...] = (
    ("/api/v1/definitions", MAX_PUBLISH_BODY, "lab_yaml"),  # a lab YAML of up to 1 MiB, JSON-escaped
    ("/api/v1/cloudevents", MAX_CLOUDEVENTS_BODY, "body"),  # a batch of up to 100 events
    ("/api/v1/instances", MAX_INSTANCE_BODY, "body"),
)


def limit_for(path: str) -> tuple[int, str]:
    return next(((limit, field) for prefix, limit, field in LIMITS if path.startswith(prefix)),
                (DEFAULT_LIMIT, "body"))


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; an ``HTTPException`` so FastAPI's body parsing re-raises it
    as it is (anything else it turns into a 400) and the problem handlers answer 413."""

    def __init__(self, limit: int, field: str) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes, this route's limit")
        self.field = field


class BodySizeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, field = limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(BodyTooLarge(limit, field), scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, field)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as error:  # read outside the routes' exception handling
            if started:
                raise
            await _refuse(error, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(error: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
    detail = str(error.detail)
    response = problem(413, "Payload too large", detail, errors=[{"field": error.field, "reason": detail}],
                       headers={"Connection": "close"})
    await response(scope, receive, send)
