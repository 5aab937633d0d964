"""Errors as ``application/problem+json`` (RFC 9457): status, title, detail and the field at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.logging import log
from domain.errors import DomainError, IllegalTransition, InvalidInput

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str = "",
    *,
    type_: str = "about:blank",
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


class ApiProblem(Exception):
    """Raised by endpoints for HTTP-level refusals (auth, size limits, idempotency clashes)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = headers


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _location(err.get("loc", ())), "reason": err.get("msg", "invalid")}
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        status = 400 if any(err.get("type") == "json_invalid" for err in exc.errors()) else 422
        return problem(
            status,
            "Malformed request" if status == 400 else "Invalid input",
            f"{first['field']}: {first['reason']}",
            errors=errors,
        )

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return problem(
            exc.status, exc.title, exc.detail, errors=[{"field": exc.field, "reason": exc.reason}]
        )

    @app.exception_handler(IllegalTransition)
    async def _transition(_: Request, exc: IllegalTransition) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, state=exc.state, action=exc.action)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        # An error may carry more than a sentence (an extension refused: the reasons and
        # the longest extension possible); ``problem_fields`` become members of the body.
        fields = getattr(exc, "problem_fields", None)
        return problem(exc.status, exc.title, exc.detail, **(fields() if callable(fields) else {}))

    @app.exception_handler(ApiProblem)
    async def _api(_: Request, exc: ApiProblem) -> JSONResponse:
        errors = [{"field": exc.field, "reason": exc.detail}] if exc.field else None
        return problem(exc.status, exc.title, exc.detail, errors=errors, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail or "")
        field = getattr(exc, "field", None)  # e.g. api.edge.body_size.BodyTooLarge
        return problem(exc.status_code, _reason(exc.status_code), detail,
                       errors=[{"field": field, "reason": detail}] if field else None,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem(500, "Internal Server Error", "the error was logged")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
