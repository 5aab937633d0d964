"""``GET /scaling/decisions`` and ``GET /fleet/cost`` over a container whose processors the test drives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from domain.context import CommandContext
from domain.instance import LabletInstance
from domain.timeslot import Timeslot
from tests.autoscaler.harness import EXAM

TOKENS = "admin:adm,instructor:ins,user:usr:alice,user:usr2:bob,grader:grd,service:svc:exam"
AUTH = {role: {"Authorization": f"Bearer {token}"} for role, token in
        [("admin", "adm"), ("instructor", "ins"), ("user", "usr")]}
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
API = "/api/v1"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container, VirtualClock]]:
    clock = VirtualClock(NOW)
    container = Container(Settings(data_dir=tmp_path, store="sqlite", tokens=TOKENS), clock=clock)
    assert container.fleet_loops == []  # an injected clock: this test drives the processors
    with TestClient(create_app(container)) as client:
        yield client, container, clock


def caught_up(container: Container) -> dict[str, int]:
    return {"min_position": container.store.max_position()}


def test_an_asap_lab_on_an_empty_fleet_is_a_recorded_launch_and_billed_boot(
    app: tuple[TestClient, Container, VirtualClock],
) -> None:
    client, container, clock = app
    ctx = CommandContext(at=clock.now(), actor="service:exam")
    container.store.save(LabletInstance.request_with(
        definition_name="exam", definition_version="1.0.0", requirements=EXAM, grading_enabled=False,
        owner_id="alice", timeslot=Timeslot(None, NOW + timedelta(hours=1)), ctx=ctx))
    decision = container.autoscaler.tick()
    assert decision is not None and len(decision.launched_worker_ids) == 1
    asyncio.run(container.worker_controller.tick())
    clock.advance(timedelta(minutes=30))
    asyncio.run(container.worker_controller.tick())

    response = client.get(f"{API}/scaling/decisions", headers=AUTH["instructor"], params=caught_up(container))
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["decision_id"] == decision.decision_id
    assert [a["action"] for a in item["actions"]] == ["LaunchWorker"]
    assert item["launched_worker_ids"] == decision.launched_worker_ids
    assert item["inputs"]["demand"]["queued"] == 1 and "late" in item["actions"][0]["reason"]
    one = client.get(f"{API}/scaling/decisions/{item['decision_id']}", headers=AUTH["admin"])
    assert one.status_code == 200 and one.json()["position"] == item["position"]

    cost = client.get(f"{API}/fleet/cost", headers=AUTH["instructor"], params=caught_up(container)).json()
    assert cost["workers"] == 1
    # Launched at 09:00, RUNNING from 09:20 (20-min boot): 30 billed minutes so far, all idle.
    assert cost["worker_hours"] == pytest.approx(0.5)
    assert cost["idle_share"] == pytest.approx(1.0)
    assert cost["per_template"]["personal-standard"]["cost"] == pytest.approx(0.5 * 3.96)


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/scaling/decisions", {}, 403),
    ("/fleet/cost", {}, 403),
])
def test_users_may_not_read_the_fleet(app: tuple[TestClient, Container, VirtualClock], path: str,
                                      params: dict, status: int) -> None:
    client, _container, _clock = app
    assert client.get(f"{API}{path}", headers=AUTH["user"], params=params).status_code == status


def test_bad_cursor_and_unknown_decision(app: tuple[TestClient, Container, VirtualClock]) -> None:
    client, _container, _clock = app
    bad = client.get(f"{API}/scaling/decisions", headers=AUTH["admin"], params={"cursor": "nope"})
    assert bad.status_code == 422
    missing = client.get(f"{API}/scaling/decisions/unknown", headers=AUTH["admin"])
    assert missing.status_code == 404


def test_min_warm_from_settings_keeps_a_worker_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store="sqlite", tokens=TOKENS, min_warm={"personal-standard": 1})
    container = Container(settings, clock=VirtualClock(NOW))
    container.seed_worker_templates()
    try:
        decision = container.autoscaler.tick()
        assert decision is not None
        assert [(a.kind, a.template, a.count) for a in decision.plan.launches] == [("LaunchWorker", "personal-standard", 1)]
    finally:
        container.read_models.close()
        container.store.close()
