"""Timelines (every event about an instance, explained) and ``state?at=`` (the instance as it was)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.container import Container
from domain.context import CommandContext
from domain.instance import InstanceRequirements, InstanceState, LabletInstance, ScoreReport
from domain.timeslot import Timeslot
from projections.events import StoredEvent
from projections.readmodel import encode_cursor
from projections.readmodels.instances import InstancesProjection, instance_document
from projections.readmodels.timeline import describe, related_instances
from tests.api.test_instances_support import (
    ADMIN,
    API,
    AUTH,
    NOW,
    assert_problem,
    bring_up,
    caught_up,
    instance_client,
    place,
    request_instance,
    running_worker,
)

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """One app for the tests that use only an instance of their own and do not move the clock."""
    with instance_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def lived(client: TestClient, container: Container) -> tuple[str, str]:
    """An instance requested at NOW, placed, ready at NOW+1 min, logged in at NOW+2 min, cancelled at NOW+3."""
    instance_id = request_instance(client, "user")["id"]
    worker_id = running_worker(client, container)
    place(container, instance_id, worker_id)
    bring_up(container, instance_id)
    container.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    assert client.post(f"{API}/instances/{instance_id}/login", headers=AUTH["user"]).status_code == 202
    container.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    assert client.delete(f"{API}/instances/{instance_id}", headers=AUTH["user"]).status_code == 202
    return instance_id, worker_id


def timeline(client: TestClient, container: Container, instance_id: str, role: str = "admin", **params: Any) -> Any:
    return client.get(f"{API}/instances/{instance_id}/timeline", params={**caught_up(container), **params},
                      headers=AUTH[role])


def test_the_timeline_tells_the_whole_story_in_log_order(app: Client) -> None:
    client, container = app
    instance_id, worker_id = lived(client, container)
    response = timeline(client, container, instance_id, "user")
    assert response.status_code == 200, response.text
    # Failed placements a running scheduler may add are not what this test is about.
    items = [i for i in response.json()["items"] if i["type"] != "PlacementFailed"]
    assert [i["type"] for i in items] == [
        "InstanceRequested", "CapacityReserved", "PlacementDecided", "InstanceScheduled", "InstantiationStarted", "LabImported",
        "LabStarted", "InstanceReady", "UserLoggedIn", "InstanceTerminated", "CapacityReleased",
    ]
    positions = [i["position"] for i in items]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    by_type = {i["type"]: i for i in items}
    assert by_type["CapacityReserved"]["stream_id"] == worker_id  # from the worker's stream
    assert by_type["InstanceRequested"]["actor"] == "user:alice"
    assert by_type["InstanceScheduled"]["actor"] == "system:scheduler"
    assert by_type["InstanceTerminated"]["data"]["reason"] == "cancelled"
    # The termination and the release were one command: same cause, one correlation.
    assert by_type["InstanceTerminated"]["causation_id"] == by_type["CapacityReleased"]["causation_id"]
    assert "Terminated (cancelled) from RUNNING" in by_type["InstanceTerminated"]["description"]
    assert by_type["InstanceTerminated"]["description"].endswith("(by user:alice)")
    assert "serial_1=" in by_type["InstanceScheduled"]["description"]
    assert by_type["PlacementDecided"]["description"].startswith(f"Placement chose worker {worker_id} (policy test)")
    instance_versions = [i["version"] for i in items if i["stream_id"] == instance_id]
    assert instance_versions == list(range(len(instance_versions)))


def test_timeline_pages(app: Client) -> None:
    client, container = app
    instance_id, _ = lived(client, container)
    first = timeline(client, container, instance_id, limit=4).json()
    second = timeline(client, container, instance_id, limit=100, cursor=first["next_cursor"]).json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    assert [i["position"] for i in first["items"] + second["items"]] == [
        i["position"] for i in timeline(client, container, instance_id).json()["items"]]


@pytest.mark.parametrize("cursor", [encode_cursor(2**63, "k"), encode_cursor("text", "k"), "!!!"])
def test_a_timeline_cursor_we_did_not_hand_out_is_422(shared: Client, cursor: str) -> None:
    client, container = shared
    instance_id = request_instance(client, "user")["id"]
    assert_problem(timeline(client, container, instance_id, cursor=cursor), 422, "cursor")


def test_timelines_are_private_like_instances(shared: Client) -> None:
    client, container = shared
    instance_id = request_instance(client, "user")["id"]
    assert timeline(client, container, instance_id, "instructor").status_code == 200
    assert_problem(timeline(client, container, instance_id, "service"), 404)
    assert_problem(timeline(client, container, instance_id, "grader"), 403)
    assert_problem(client.get(f"{API}/instances/{instance_id}/timeline", params=caught_up(container),
                              headers={"Authorization": "Bearer usr2"}), 404)


def state_at(client: TestClient, instance_id: str, at: datetime | str, role: str = "admin") -> Any:
    value = at.isoformat() if isinstance(at, datetime) else at
    return client.get(f"{API}/instances/{instance_id}/state", params={"at": value}, headers=AUTH[role])


@pytest.mark.parametrize(
    ("offset", "state"),
    [(timedelta(0), "SCHEDULED"), (timedelta(seconds=59), "SCHEDULED"), (timedelta(minutes=1), "READY"),
     (timedelta(minutes=2, seconds=30), "RUNNING"), (timedelta(minutes=3), "TERMINATED"),
     (timedelta(days=365), "TERMINATED")],
)
def test_state_at_replays_up_to_the_moment(app: Client, offset: timedelta, state: str) -> None:
    client, container = app
    instance_id, _ = lived(client, container)
    response = state_at(client, instance_id, NOW + offset, "user")
    assert response.status_code == 200, response.text
    assert response.json()["instance"]["state"] == state


def test_state_before_the_request_is_404(shared: Client) -> None:
    client, container = shared
    instance_id = request_instance(client, "user")["id"]
    assert_problem(state_at(client, instance_id, NOW - timedelta(microseconds=1)), 404)
    assert state_at(client, instance_id, NOW).json()["instance"]["state"] == "PENDING"


def test_state_now_is_what_the_read_model_says(app: Client) -> None:
    client, container = app
    instance_id, _ = lived(client, container)
    now = state_at(client, instance_id, NOW + timedelta(days=1)).json()
    doc = client.get(f"{API}/instances/{instance_id}", params=caught_up(container), headers=ADMIN).json()
    assert now["version"] == doc["version"]
    assert {**now["instance"], "position": doc["position"]} == doc


@pytest.mark.parametrize("at", ["2026-11-28T09:00:00", "yesterday", ""])
def test_state_at_needs_an_rfc3339_time_with_zone(shared: Client, at: str) -> None:
    client, container = shared
    instance_id = request_instance(client, "user")["id"]
    assert_problem(state_at(client, instance_id, at), 422, "at")


def test_state_at_is_private_like_instances(shared: Client) -> None:
    client, container = shared
    instance_id = request_instance(client, "user")["id"]
    assert_problem(client.get(f"{API}/instances/{instance_id}/state", params={"at": NOW.isoformat()},
                              headers={"Authorization": "Bearer usr2"}), 404)
    assert_problem(state_at(client, instance_id, NOW, "grader"), 403)
    assert state_at(client, instance_id, NOW, "instructor").status_code == 200


# -- the projection agrees with the aggregate --------------------------------------------------
class DictTx:
    """Just enough of ``ReadModelTx`` for one projection."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        doc = self.docs.get((table, key))
        return None if doc is None else {**doc}

    def put(self, table: str, key: str, doc: dict[str, Any]) -> None:
        self.docs[(table, key)] = {**doc}


REQUIREMENTS = InstanceRequirements(2, 4, 10, 2, ("serial_1",), max_duration_minutes=90)
COMMANDS = ["place_failed", "place_decided", "schedule", "unschedule", "extend", "instantiate", "import", "start_lab", "fail", "ready", "login",
            "restart", "collect", "grade", "complete", "fail_grading", "stop", "stopped", "archive", "terminate"]


def _command(instance: LabletInstance, name: str, ctx: CommandContext) -> None:
    at = ctx.at
    if name == "place_failed":
        instance.record_placement_failed(f"d-{at.minute}", "no worker with room", {"outcome": "unplaceable"}, ctx)
    elif name == "place_decided":
        instance.record_placement_decided("d-1", "Worker-1", {"outcome": "placed", "policy": "bin-packing"}, ctx)
    elif name == "schedule":
        instance.schedule("Worker-1", {"serial_1": 2000}, at, at + timedelta(hours=2), "d-1", ctx)
    elif name == "unschedule":
        instance.unschedule("worker_lost", ctx)
    elif name == "extend":
        instance.record_hold_extended(at + timedelta(hours=5), ctx)
    elif name == "instantiate":
        instance.start_instantiation(instance.instantiation_attempt + 1, ctx, lab_yaml_uri=f"file:///lab-{at.minute}")
    elif name == "import":
        instance.record_lab_imported("lab-1", ctx)
    elif name == "start_lab":
        instance.record_lab_started(ctx)
    elif name == "fail":
        instance.instantiation_failed("boom", ctx)
    elif name == "ready":
        instance.mark_ready({"login_url": "u"}, ctx)
    elif name == "login":
        instance.login(ctx)
    elif name == "restart":
        instance.restart(ctx)
    elif name == "collect":
        instance.start_collection(ctx)
    elif name == "grade":
        instance.start_grading({"session": "g"}, ctx)
    elif name == "complete":
        instance.complete_grading(ScoreReport(8, 10, 6, True), ctx)
    elif name == "fail_grading":
        instance.fail_grading("grader down", ctx)
    elif name == "stop":
        instance.request_stop("test", ctx)
    elif name == "stopped":
        instance.mark_stopped(ctx)
    elif name == "archive":
        instance.archive(ctx)
    elif name == "terminate":
        instance.terminate("admin", ctx)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(COMMANDS), max_size=25), st.booleans())
def test_the_read_model_document_is_the_aggregate(commands: list[str], asap: bool) -> None:
    at = NOW
    ctx = CommandContext(at=at, actor="user:alice")
    slot = Timeslot(None if asap else at + timedelta(hours=1), at + timedelta(hours=2))
    instance = LabletInstance.request_with(
        definition_name="d", definition_version="1.0.0", requirements=REQUIREMENTS, grading_enabled=True,
        owner_id="alice", timeslot=slot, ctx=ctx)
    for name in commands:
        at += timedelta(minutes=1)
        try:
            _command(instance, name, CommandContext(at=at, actor="system:test"))
        except Exception:  # noqa: BLE001 - illegal commands record nothing; the walk goes on
            pass
    events = instance.collect_events()
    tx = DictTx()
    projection = InstancesProjection()
    for position, event in enumerate(events, start=1):
        projection.handle(StoredEvent(position, instance.id, event.originator_version, "", event), tx)
    doc = tx.get("instances", instance.id)
    assert doc is not None
    expected = instance_document(instance, requested_by="user:alice")
    assert {k: v for k, v in doc.items() if k != "position"} == expected
    assert InstanceState(doc["state"]) is instance.state


def test_related_instances_come_from_payloads() -> None:
    def stored(stream: str) -> StoredEvent:
        return StoredEvent(1, stream, 0, "", object())

    iid = "LabletInstance-1"
    assert list(related_instances(stored(iid), {"instance_id": "LabletInstance-2"})) == [iid]
    assert list(related_instances(stored("Worker-1"), {"instance_id": iid})) == [iid]
    assert list(related_instances(stored("Placement-1"), {"decision": {"instance_id": iid}})) == [iid]
    assert list(related_instances(stored("Worker-1"), {"held_instance_ids": [iid, "LabletInstance-3", iid]})) == [
        iid, "LabletInstance-3"]
    assert list(related_instances(stored("Worker-1"), {"instance_id": "Worker-2"})) == []


def test_describe_never_fails_and_names_the_actor() -> None:
    assert describe({"type": "SomethingNew", "actor": "system:x", "data": {}}) == "Something new (by system:x)"
    odd = describe({"type": "GradingCompleted", "actor": "", "data": {"score_report": "not a dict"}})
    assert odd == "Grading completed"
