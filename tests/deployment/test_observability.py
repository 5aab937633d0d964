"""Observability: Prometheus metrics fed from the read models and the log, delivery counts,
and OpenTelemetry spans (in-memory exporter) carrying the correlation id."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api import telemetry
from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.metrics import CountedDeliveryLog, EventCounters, Metrics
from api.settings import Settings
from domain.instance import LabletInstance
from domain.scaling_decision import ScalingDecision
from tests.api.test_instances_support import (
    ADMIN,
    API,
    NOW,
    TOKENS,
    instance_client,
    definition_body,
    place,
    request_instance,
    running_worker,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_report_instances_workers_placements_and_latency(tmp_path: Path) -> None:
    with instance_client(tmp_path) as (client, container):
        worker_id = running_worker(client, container)
        instance = request_instance(client, duration_minutes=60)
        place(container, instance["id"], worker_id)
        assert container.wait_for_position(container.store.max_position(), 10)
        text = client.get("/metrics").text
    found = samples(text)
    assert found[("lrm_placement_decisions_total", (("outcome", "placed"),))] == 1
    assert found[("lrm_instances", (("state", "SCHEDULED"),))] == 1
    assert found[("lrm_workers", (("state", "RUNNING"), ("template", "personal-standard")))] == 1
    assert any(name == "lrm_http_request_duration_seconds_count" and ("route", "/api/v1/instances") in labels
               for name, labels in found)
    assert any(name == "lrm_projection_lag_events" for name, _ in found)


@dataclass
class Stored:
    position: int
    topic: str
    event: Any


class FakeFeed:
    def __init__(self, events: list[Stored]) -> None:
        self.events = events
        self.calls = 0

    def read_all(self, after: int = 0, limit: int = 1000, topics: Any = ()) -> list[Stored]:
        self.calls += 1
        return [e for e in self.events if e.position > after and e.topic in topics][:limit]


@dataclass
class Decided:
    actions: list[dict[str, Any]]


PLACED, FAILED = get_topic(LabletInstance.PlacementDecided), get_topic(LabletInstance.PlacementFailed)
SCALED = get_topic(ScalingDecision.ScalingDecided)


def test_event_counters_count_each_decision_once_across_scrapes() -> None:
    metrics = Metrics()
    feed = FakeFeed([
        Stored(1, PLACED, None), Stored(2, FAILED, None), Stored(3, "other:Event", None),
        Stored(4, SCALED, Decided([{"action": "launch", "template": "personal-standard", "count": 2},
                                   {"action": "terminate", "template": "personal-standard"}])),
        Stored(5, PLACED, None),
    ])
    counters = EventCounters(metrics, batch=2)
    assert counters.feed(feed) == 4
    assert counters.feed(feed) == 0  # a second scrape counts nothing again
    feed.events.append(Stored(9, FAILED, None))
    assert counters.feed(feed) == 1
    found = samples(metrics.render().body.decode())
    assert found[("lrm_placement_decisions_total", (("outcome", "placed"),))] == 2
    assert found[("lrm_placement_decisions_total", (("outcome", "failed"),))] == 2
    assert found[("lrm_scaling_actions_total", (("action", "launch"), ("template", "personal-standard")))] == 2
    assert found[("lrm_scaling_actions_total", (("action", "terminate"), ("template", "personal-standard")))] == 1


@dataclass
class Attempt:
    outcome: str


class FakeDeliveryStore:
    def __init__(self) -> None:
        self.recorded: list[Attempt] = []

    def record_attempt(self, attempt: Attempt) -> None:
        self.recorded.append(attempt)

    def get(self, subscription_id: str) -> int:
        return 7


def test_webhook_deliveries_are_counted_by_result_and_still_recorded() -> None:
    metrics, store = Metrics(), FakeDeliveryStore()
    counted = CountedDeliveryLog(store, metrics)
    for outcome in ("delivered", "retry", "retry", "dead_letter"):
        counted.record_attempt(Attempt(outcome))
    assert [a.outcome for a in store.recorded] == ["delivered", "retry", "retry", "dead_letter"]
    assert counted.get("s") == 7  # everything else goes to the store
    found = samples(metrics.render().body.decode())
    assert found[("lrm_webhook_deliveries_total", (("result", "retry"),))] == 2
    assert found[("lrm_webhook_deliveries_total", (("result", "delivered"),))] == 1


@pytest.fixture(scope="module")
def spans() -> Any:
    """An in-memory span exporter behind the process's tracer provider (set once per process)."""
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    if telemetry.enabled():
        pytest.skip("tracing was already configured in this process")
    assert telemetry.configure_tracing("lrm-test", exporter=exporter)
    yield exporter
    # Containers built by later tests in this session must not wrap their adapters.
    telemetry._configured = False


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setattr(telemetry, "_configured", False)
    assert telemetry.configure_tracing("lrm-test") is False


def test_a_request_is_a_span_named_by_its_route_with_the_correlation_id(
    tmp_path: Path, spans: Any
) -> None:
    spans.clear()
    container = Container(Settings(data_dir=tmp_path, store="sqlite", tokens=TOKENS), clock=VirtualClock(NOW))
    with TestClient(telemetry.TracingMiddleware(create_app(container))) as client:
        assert client.post(f"{API}/definitions", json=definition_body(), headers=ADMIN).status_code == 201
        response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing"},
                               headers={"Authorization": "Bearer usr", "X-Correlation-Id": "corr-42"})
        assert response.status_code == 201, response.text
        requested = container.store.read_stream(response.json()["id"])[0]
    assert requested.event.metadata["correlation_id"] == "corr-42"  # the same id in the event
    names = [s.name for s in spans.get_finished_spans()]
    span = next((s for s in spans.get_finished_spans() if s.name == "http POST /api/v1/instances"), None)
    assert span is not None, names
    assert span.attributes["lrm.correlation_id"] == "corr-42"
    assert span.attributes["http.response.status_code"] == 201


def test_processor_steps_are_spans_sync_and_async(spans: Any) -> None:
    spans.clear()

    async def async_pass(*, wait: bool = True) -> int:
        return 3

    assert telemetry.traced("scheduler.pass", lambda: 1)() == 1
    assert asyncio.run(telemetry.traced("instances.pass", async_pass)(wait=False)) == 3
    with pytest.raises(ValueError):
        telemetry.traced("autoscaler.tick", _fails)()
    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["scheduler.pass", "instances.pass", "autoscaler.tick"]
    assert not spans.get_finished_spans()[-1].status.is_ok


def _fails() -> None:
    raise ValueError("boom")


def test_log_lines_carry_the_instance_and_worker_ids_they_name(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from api.logging import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO", "json")
    telemetry.enrich_logs()
    try:
        emit_lines()
    finally:
        root.handlers[:] = saved_handlers  # the JSON handler wrote to this test's captured stderr
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert (lines[-2]["instance_id"], lines[-2]["worker_id"]) == (INSTANCE_ID, WORKER_ID)
    assert "instance_id" not in lines[-1]


INSTANCE_ID = "LabletInstance-0f8fad5b-d9cb-469f-a165-70867728950e"
WORKER_ID = "Worker-7c9e6679-7425-40de-944b-e07fc1f90ae7"


def emit_lines() -> None:
    import logging

    logging.getLogger("processors.scheduler").warning("placing %s on %s", INSTANCE_ID, WORKER_ID)
    with telemetry.span("scheduler.pass"):
        logging.getLogger("processors.scheduler").info("nothing named here")


def test_adapter_calls_are_spans_and_attributes_pass_through(spans: Any) -> None:
    spans.clear()

    class Cloud:
        region = "us-east-1"

        async def launch(self, worker_id: str) -> str:
            return f"i-{worker_id}"

        def describe(self) -> str:
            return "simulated"

    cloud = telemetry.traced_adapter(Cloud(), "cloud")
    assert asyncio.run(cloud.launch("w1")) == "i-w1"
    assert cloud.describe() == "simulated" and cloud.region == "us-east-1"
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["cloud.launch", "cloud.describe"]
    assert finished[0].attributes["lrm.external"] == "cloud"
