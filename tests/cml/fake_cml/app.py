"""The fake CML as an ASGI app: bearer auth on every route but the open ones, CML's error
bodies for refusals, unknown routes and bad parameters, and the fault-injection wrapper."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tests.cml.fake_cml import routes_labs, routes_nodes, routes_system
from tests.cml.fake_cml.errors import CmlHttpError, cml_error
from tests.cml.fake_cml.faults import FaultInjection
from tests.cml.fake_cml.routes_system import API, OPEN_PATHS, bearer_token
from tests.cml.fake_cml.state import FakeCml


def build_app(fake: FakeCml) -> FaultInjection:
    app = FastAPI()

    @app.exception_handler(CmlHttpError)
    async def _cml_refusal(request: Request, error: CmlHttpError) -> JSONResponse:
        return cml_error(error.status, error.description)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        # Unknown routes and wrong methods: CML's body, not FastAPI's {"detail": ...}.
        description = f"{error.detail}: {request.method} {request.url.path}"
        return cml_error(error.status_code, description)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        return cml_error(422, problems)

    @app.middleware("http")
    async def _authorize(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith(API) and path not in OPEN_PATHS and not fake.token_valid(bearer_token(request)):
            return cml_error(401, "No authorization token provided or token expired.")
        return await call_next(request)

    routes_system.register(app, fake)
    routes_labs.register(app, fake)
    routes_nodes.register(app, fake)
    return FaultInjection(app, fake)
