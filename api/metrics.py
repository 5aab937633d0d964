"""Prometheus metrics: request latency by route and status, plus gauges the container refreshes."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    """One registry per app, so tests can run several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "lrm_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.projection_lag = Gauge(
            "lrm_projection_lag_events", "events behind the log head", ["projection"],
            registry=self.registry,
        )
        self.instances_by_state = Gauge(
            "lrm_instances", "lablet instances by state", ["state"], registry=self.registry
        )
        self.workers_by_state = Gauge(
            "lrm_workers", "workers by state and template", ["state", "template"], registry=self.registry
        )
        self.lease_active = Gauge(
            "lrm_lease_active", "1 while this replica holds the role's lease (leads)", ["role"],
            registry=self.registry,
        )

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _route_template(scope: Scope) -> str:
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", scope.get("path", ""))
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.request_seconds.labels(
                scope.get("method", ""), _route_template(scope), str(status["code"])
            ).observe(time.perf_counter() - started)


def metrics_endpoint(request: Request) -> Response:
    container = request.app.state.container
    container.refresh_gauges()
    return container.metrics.render()
