"""Per-request id and correlation id: bound into every log line and echoed in responses."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.logging import log

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"


# A caller's id goes into every event's metadata and the timeline read model: visible
# ASCII only (no NUL, controls or spaces), else the request gets an id of our own.
_ID = re.compile(r"[\x21-\x7e]{1,128}")


def _header(scope: Scope, name: str) -> str:
    for key, value in scope.get("headers", []):
        if key.decode("latin-1").lower() == name:
            text = value.decode("latin-1")[:128]
            return text if _ID.fullmatch(text) else ""
    return ""


class RequestContextMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming responses (SSE) are not buffered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID_HEADER) or str(uuid.uuid4())
        correlation_id = _header(scope, CORRELATION_ID_HEADER) or request_id
        scope.setdefault("state", {})
        scope["state"]["request_id"] = request_id
        scope["state"]["correlation_id"] = correlation_id
        structlog.contextvars.bind_contextvars(
            request_id=request_id, correlation_id=correlation_id
        )
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                headers.append((CORRELATION_ID_HEADER.encode(), correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            log.info(
                "http_request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status_holder["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
