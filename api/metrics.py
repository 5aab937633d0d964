"""Prometheus metrics: request latency by route and status, plus gauges the container refreshes."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
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
        self.projection_parked = Gauge(
            "lrm_projection_parked_events", "events parked (not applied) per read model, awaiting an admin",
            ["projection"], registry=self.registry,
        )
        self.projection_rebuild_remaining = Gauge(
            "lrm_projection_rebuild_remaining_events", "events a shadow rebuild still has to apply",
            ["projection"], registry=self.registry,
        )
        self.instances_by_state = Gauge(
            "lrm_instances", "lablet instances by state", ["state"], registry=self.registry
        )
        self.workers_by_state = Gauge(
            "lrm_workers", "workers by state and template", ["state", "template"], registry=self.registry
        )
        self.placement_decisions = Counter(
            "lrm_placement_decisions", "placement decisions recorded, by outcome (placed|failed)", ["outcome"],
            registry=self.registry,
        )
        self.scaling_actions = Counter(
            "lrm_scaling_actions", "scaling actions decided, by action and template", ["action", "template"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "lrm_webhook_deliveries", "webhook delivery attempts by this replica, by result", ["result"],
            registry=self.registry,
        )
        self.lease_active = Gauge(
            "lrm_lease_active", "1 while this replica holds the role's lease (leads)", ["role"],
            registry=self.registry,
        )

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class EventCounters:
    """Counters of decisions recorded in the event log, fed on each scrape from where the
    last one stopped: placement decisions by outcome and scaling actions by kind.

    They count the whole system's decisions (whichever replica made them), so every
    process reports the same totals: aggregate replicas with ``max``, not ``sum``.
    """

    def __init__(self, metrics: Metrics, *, batch: int = 5000, max_batches: int = 20) -> None:
        from eventsourcing.utils import get_topic

        from domain.instance import LabletInstance
        from domain.scaling_decision import ScalingDecision

        self.metrics = metrics
        self.position = 0
        self.batch = batch
        self.max_batches = max_batches  # bounded work per scrape; the rest next time
        self._placed = get_topic(LabletInstance.PlacementDecided)
        self._failed = get_topic(LabletInstance.PlacementFailed)
        self._scaled = get_topic(ScalingDecision.ScalingDecided)
        self.topics = (self._placed, self._failed, self._scaled)

    def feed(self, events: object) -> int:
        """Count what ``events.read_all`` returns after the last position; returns how many."""
        counted = 0
        for _ in range(self.max_batches):
            batch = events.read_all(after=self.position, limit=self.batch, topics=self.topics)  # type: ignore[attr-defined]
            for stored in batch:
                self._count(stored)
                self.position = max(self.position, stored.position or self.position)
            counted += len(batch)
            if len(batch) < self.batch:
                break
        return counted

    def _count(self, stored: object) -> None:
        topic, event = stored.topic, stored.event  # type: ignore[attr-defined]
        if topic == self._placed:
            self.metrics.placement_decisions.labels("placed").inc()
        elif topic == self._failed:
            self.metrics.placement_decisions.labels("failed").inc()
        elif topic == self._scaled:
            for action in event.actions:
                self.metrics.scaling_actions.labels(
                    str(action.get("action", "unknown")), str(action.get("template", ""))
                ).inc(int(action.get("count", 1) or 1))


class CountedDeliveryLog:
    """The webhook store, counting each recorded delivery attempt by outcome (this replica's)."""

    def __init__(self, store: object, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    def record_attempt(self, attempt: object) -> None:
        self._store.record_attempt(attempt)  # type: ignore[attr-defined]
        self._metrics.webhook_deliveries.labels(str(attempt.outcome)).inc()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


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
