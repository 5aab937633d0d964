"""The FastAPI application: thin endpoints over the container's services."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator

from fastapi import FastAPI

from api.edge.body_size import BodySizeMiddleware
from api.edge.url_text import UrlTextMiddleware
from api.health import router as health_router
from api.metrics import MetricsMiddleware, metrics_endpoint
from api.middleware import RequestContextMiddleware
from api.problems import install_problem_handlers
from api.routes import include_all
from api.web.routes import router as web_router

if TYPE_CHECKING:  # the container imports every layer; the app needs only its interface
    from api.container import Container


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        container.start()
        try:
            yield
        finally:
            container.stop()

    app = FastAPI(
        title="Lablet Resource Manager",
        version="0.1.0",
        description="Books, places, starts, grades and tears down CML lablets. "
        "Errors are application/problem+json (RFC 9457).",
        lifespan=lifespan,
    )
    app.state.container = container
    # Outermost last: ids and metrics see every request, refusals included.
    app.add_middleware(BodySizeMiddleware)
    app.add_middleware(UrlTextMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=container.metrics)
    app.add_middleware(RequestContextMiddleware)
    install_problem_handlers(app)
    app.include_router(health_router)
    include_all(app)
    app.include_router(web_router)  # the dashboard and timeline pages (not under /api/v1)
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    return app


def create_worker_app() -> FastAPI:
    """One API process of ``lablet serve --workers N`` (uvicorn builds it in each worker from
    the environment the CLI prepared: LRM_ROLES=api, LRM_API_RUNS_PROJECTIONS, LRM_SEED)."""
    from api.container import Container
    from api.logging import configure_logging
    from api.roles import parse_roles
    from api.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(Container(settings, roles=parse_roles(settings.roles)))
