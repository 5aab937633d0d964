"""Refuse control characters in the decoded path and query string (422, before routing).

Ids and names arrive in the path (``/instances/LabletInstance-%00``) and filters in the
query; a NUL in either used to reach PostgreSQL and come back as a 500 (``psycopg.DataError``).
No valid id, name or filter contains a control character (``domain.text``), so any such
request is refused here, naming where: ``path`` or ``query.<name>``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem
from domain.text import text_problem


class UrlTextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        field, reason = refusal
        response = problem(422, "Invalid input", f"{field}: {reason}", errors=[{"field": field, "reason": reason}])
        await response(scope, receive, send)


def _refusal(scope: Scope) -> tuple[str, str] | None:
    reason = text_problem(scope.get("path", ""))
    if reason is not None:
        return "path", reason
    raw = scope.get("query_string", b"")
    # Lengths are each parameter's own (``max_length``); the server bounds the whole line.
    # Decoded as Starlette decodes it for the endpoint (percent-escapes as UTF-8).
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if text_problem(name) is not None:
            return "query.?", f"a parameter name {text_problem(name)}"
        reason = text_problem(value)
        if reason is not None:
            return f"query.{name}", reason
    return None
