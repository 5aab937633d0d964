"""``/workers``: provision, read, drain, cancel-drain, stop, timeline; roles; refusals append nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.worker import Worker
from domain.worker_template import WorkerTemplate
from processors.commands.workers import WorkerService
from tests.api.test_templates_support import (
    send_as_admin,
    ADMIN,
    API,
    AUTH,
    NOW,
    assert_problem,
    caught_up,
    control_client,
    head,
    reserve,
    running_worker,
    system_ctx,
)

URL = f"{API}/workers"
UNKNOWN = "Worker-00000000-0000-4000-8000-000000000000"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    with control_client(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Container]]:
    """One app for the tests that only read or are refused (cheaper than one app per test)."""
    with control_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def read(client: TestClient, container: Container, worker_id: str) -> dict:
    response = client.get(f"{URL}/{worker_id}", headers=AUTH["instructor"], params=caught_up(container))
    assert response.status_code == 200, response.text
    return response.json()


def test_provision_records_a_pending_worker_with_the_template_snapshot(app: tuple[TestClient, Container]) -> None:
    client, container = app
    response = client.post(URL, headers=ADMIN, json={"template": "personal-standard", "reason": "exam wave"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "PENDING"
    assert created["position"] == head(container)
    worker = read(client, container, created["id"])
    assert worker["template_name"] == "personal-standard"
    assert worker["state"] == "PENDING"
    assert worker["declared"] == {"cpu_cores": 48.0, "memory_gb": 192.0, "storage_gb": 500.0, "nodes": 20,
                                  "ports": 1000}
    assert worker["reserved_now"] == {"cpu_cores": 0.0, "memory_gb": 0.0, "storage_gb": 0.0, "nodes": 0, "ports": 0}
    assert worker["expected_ready_at"] == (NOW + timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    assert worker["reservations"] == [] and worker["ports_in_use"] == []


def test_worker_shows_what_it_holds_now(app: tuple[TestClient, Container]) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    reserve(container, worker_id, "Instance-now", NOW - timedelta(minutes=30), 2, cpu=4, nodes=3,
            ports=("serial_1", "vnc_1"))
    reserve(container, worker_id, "Instance-later", NOW + timedelta(hours=3), 1, cpu=8, nodes=5)
    worker = read(client, container, worker_id)
    assert worker["state"] == "RUNNING" and worker["ip"] == "10.0.0.10"
    assert worker["reserved_now"] == {"cpu_cores": 4.0, "memory_gb": 16.0, "storage_gb": 10.0, "nodes": 3, "ports": 2}
    assert worker["ports_in_use"] == [
        {"port": 2000, "name": "serial_1", "instance_id": "Instance-now"},
        {"port": 2001, "name": "vnc_1", "instance_id": "Instance-now"},
    ]
    assert [(r["instance_id"], r["active"]) for r in worker["reservations"]] == [
        ("Instance-now", True), ("Instance-later", False)]
    # The later booking got the lowest free ports of its own window: no overlap, so 2000 again.
    assert worker["reservations"][1]["ports"] == {"serial_1": 2000}


def test_drain_cancel_and_stop(app: tuple[TestClient, Container]) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    drained = client.post(f"{URL}/{worker_id}/drain", headers=ADMIN, json={"reason": "scale down"})
    assert drained.status_code == 202, drained.text
    assert drained.json()["position"] == head(container)
    assert read(client, container, worker_id)["state"] == "DRAINING"
    assert read(client, container, worker_id)["drain_deadline"] is not None
    cancelled = client.post(f"{URL}/{worker_id}/cancel-drain", headers=ADMIN)
    assert cancelled.status_code == 202
    assert read(client, container, worker_id)["state"] == "RUNNING"
    stopped = client.post(f"{URL}/{worker_id}/stop", headers=ADMIN)
    assert stopped.status_code == 202
    assert read(client, container, worker_id)["state"] == "STOPPING"


def test_stop_is_refused_while_a_lab_is_active_and_allowed_once_it_is_over(
    app: tuple[TestClient, Container],
) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    reserve(container, worker_id, "Instance-1", NOW - timedelta(minutes=10), 1)
    before = head(container)
    body = assert_problem(client.post(f"{URL}/{worker_id}/stop", headers=ADMIN), 409)
    assert "Instance-1" in body["detail"]
    assert head(container) == before
    container.clock.advance(timedelta(hours=1))  # the hold ends at NOW + 50 min
    assert client.post(f"{URL}/{worker_id}/stop", headers=ADMIN).status_code == 202


@pytest.mark.parametrize(
    "action, state",
    [("drain", "PENDING"), ("cancel-drain", "PENDING"), ("stop", "PENDING"), ("cancel-drain", "RUNNING")],
)
def test_illegal_transitions_are_409_with_the_state(
    shared: tuple[TestClient, Container], action: str, state: str
) -> None:
    client, container = shared
    if state == "RUNNING":
        worker_id = running_worker(client, container)
    else:
        worker_id = client.post(URL, headers=ADMIN, json={"template": "personal-standard"}).json()["id"]
    before = head(container)
    body = assert_problem(client.post(f"{URL}/{worker_id}/{action}", headers=ADMIN), 409)
    assert body["state"] == state
    assert head(container) == before


def test_timeline_lists_every_event_in_order_with_provenance(app: tuple[TestClient, Container]) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    reserve(container, worker_id, "Instance-1", NOW, 1)
    drained = client.post(f"{URL}/{worker_id}/drain", headers={**ADMIN, "x-request-id": "req-drain-1"})
    timeline = client.get(f"{URL}/{worker_id}/timeline", headers=AUTH["instructor"],
                          params={"min_position": drained.json()["position"]}).json()
    items = timeline["items"]
    assert [e["type"] for e in items] == [
        "WorkerRequested", "WorkerProvisioningStarted", "WorkerReady", "CapacityReserved", "DrainingStarted"]
    assert [e["version"] for e in items] == [0, 1, 2, 3, 4]
    positions = [e["position"] for e in items]
    assert positions == sorted(positions) and positions[-1] == drained.json()["position"]
    assert items[0]["actor"] == "admin:admin"
    assert items[3]["actor"] == "test:scheduler"
    assert items[3]["data"]["instance_id"] == "Instance-1"
    assert items[4]["causation_id"] == "req-drain-1"
    assert items[4]["data"]["held_instance_ids"] == ["Instance-1"]
    assert timeline["next_cursor"] is None
    page = client.get(f"{URL}/{worker_id}/timeline", headers=ADMIN, params={"limit": 2}).json()
    rest = client.get(f"{URL}/{worker_id}/timeline", headers=ADMIN,
                      params={"limit": 10, "cursor": page["next_cursor"]}).json()
    assert [e["version"] for e in page["items"] + rest["items"]] == [0, 1, 2, 3, 4]


def test_list_filters_by_state_template_and_liveness(app: tuple[TestClient, Container]) -> None:
    client, container = app
    running = running_worker(client, container)
    pending = client.post(URL, headers=ADMIN, json={"template": "enterprise-large"}).json()["id"]
    failed = client.post(URL, headers=ADMIN, json={"template": "enterprise-large"}).json()["id"]
    worker: Worker = container.store.get(failed)
    worker.provisioning_failed("boom", system_ctx(container))
    container.store.save(worker)

    def listed(**params: object) -> set[str]:
        response = client.get(URL, headers=AUTH["instructor"], params={**caught_up(container), **params})
        assert response.status_code == 200, response.text
        return {w["id"] for w in response.json()["items"]}

    assert listed() == {running, pending, failed}
    assert listed(state="RUNNING") == {running}
    assert listed(template="enterprise-large") == {pending, failed}
    assert listed(live="true") == {running, pending}
    assert listed(live="false") == {failed}
    assert_problem(client.get(URL, headers=ADMIN, params={"state": "ASLEEP"}), 422, "state")


@pytest.mark.parametrize(
    "body, status, field",
    [
        ("{not json", 400, None),
        ({"template": "no-such-template"}, 422, "template"),
        ({"template": "personal-standard", "size": "xl"}, 422, "size"),
        ({"template": 7}, 422, "template"),
        ({"template": "t" * 201}, 422, "template"),
        ({}, 422, "template"),
    ],
)
def test_bad_provision_requests_append_nothing(
    shared: tuple[TestClient, Container], body: object, status: int, field: str | None
) -> None:
    client, container = shared
    before = head(container)
    response = send_as_admin(client, "POST", URL, body)
    assert_problem(response, status, field)
    assert head(container) == before


def test_a_removed_template_cannot_provision(app: tuple[TestClient, Container]) -> None:
    client, container = app
    assert client.delete(f"{API}/worker-templates/enterprise-large", headers=ADMIN).status_code == 202
    before = head(container)
    assert_problem(client.post(URL, headers=ADMIN, json={"template": "enterprise-large"}), 422, "template")
    assert head(container) == before


@pytest.mark.parametrize("worker_id", [UNKNOWN, "not-a-worker", WorkerTemplate.stream_id_for("personal-standard")])
@pytest.mark.parametrize("method, suffix", [("GET", ""), ("GET", "/timeline"), ("POST", "/drain"),
                                            ("POST", "/cancel-drain"), ("POST", "/stop")])
def test_unknown_workers_are_404(
    shared: tuple[TestClient, Container], worker_id: str, method: str, suffix: str
) -> None:
    client, container = shared
    before = head(container)
    assert_problem(client.request(method, f"{URL}/{worker_id}{suffix}", headers=ADMIN), 404)
    assert head(container) == before


@pytest.mark.parametrize(
    "role, method, suffix, status",
    [
        ("instructor", "GET", "", 200),
        ("instructor", "GET", "/timeline", 200),
        ("instructor", "POST", "/drain", 403),
        ("user", "GET", "", 403),
        ("service", "GET", "/timeline", 403),
        ("grader", "GET", "", 403),
        ("user", "POST", "/stop", 403),
        (None, "GET", "", 401),
    ],
)
def test_roles(
    shared: tuple[TestClient, Container], role: str | None, method: str, suffix: str, status: int
) -> None:
    client, container = shared
    worker_id = running_worker(client, container)
    before = head(container)
    response = client.request(method, f"{URL}/{worker_id}{suffix}", headers=AUTH.get(role or "", {}),
                              params=caught_up(container) if method == "GET" else None)
    assert response.status_code == status, response.text
    assert head(container) == before
    assert client.post(URL, headers=AUTH["instructor"], json={"template": "personal-standard"}).status_code == 403


def test_release_extend_and_terminate_are_reflected_and_survive_a_rebuild(
    app: tuple[TestClient, Container],
) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    reserve(container, worker_id, "Instance-1", NOW - timedelta(minutes=5), 1)
    reserve(container, worker_id, "Instance-2", NOW - timedelta(minutes=5), 1, ports=("serial_1", "serial_2"))
    worker: Worker = container.store.get(worker_id)
    ctx = system_ctx(container)
    worker.release("Instance-1", ctx, reason="terminated")
    worker.extend_reservation("Instance-2", NOW + timedelta(hours=3), ctx)
    container.store.save(worker)
    shown = read(client, container, worker_id)
    assert [r["instance_id"] for r in shown["reservations"]] == ["Instance-2"]
    assert shown["reservations"][0]["hold_end"] == "2026-11-28T12:00:00Z"
    assert [p["port"] for p in shown["ports_in_use"]] == [2001, 2002]

    container.rebuild_projections("workers")
    assert read(client, container, worker_id) == shown

    worker = container.store.get(worker_id)
    worker.terminate("admin", ctx, force=True)
    container.store.save(worker)
    gone = read(client, container, worker_id)
    assert gone["state"] == "TERMINATED" and gone["termination_reason"] == "admin"
    assert gone["reservations"] == [] and gone["reserved_now"]["nodes"] == 0
    live = client.get(URL, headers=ADMIN, params={"live": "true", **caught_up(container)}).json()["items"]
    assert worker_id not in {w["id"] for w in live}


class RacingStore:
    """Lets a rival writer append to the stream just before our first save: a real conflict."""

    def __init__(self, store: object, rival: Callable[[], None]) -> None:
        self._store = store
        self._rival: Callable[[], None] | None = rival
        self.saves = 0

    def save(self, *aggregates: object) -> int:
        self.saves += 1
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        return self._store.save(*aggregates)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_a_command_that_loses_a_race_re_reads_and_retries(app: tuple[TestClient, Container]) -> None:
    client, container = app
    worker_id = running_worker(client, container)

    def scheduler_books_meanwhile() -> None:
        reserve(container, worker_id, "Instance-raced", NOW + timedelta(hours=1), 1)

    racing = RacingStore(container.store, scheduler_books_meanwhile)
    service = WorkerService(racing)  # type: ignore[arg-type]
    position = service.drain(worker_id, system_ctx(container, "admin:admin"), reason="race")
    assert racing.saves == 2  # the first save conflicted, the retry re-read and won
    events = container.store.read_stream(worker_id)
    assert [e.event_name for e in events][-2:] == ["CapacityReserved", "DrainingStarted"]
    assert events[-1].event.held_instance_ids == ["Instance-raced"]  # decided on the re-read state
    assert position == head(container)
