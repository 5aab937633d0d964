"""Overrun (SPEC §4 hold window): a lab still active near the end of its hold gets a longer hold,
and only future labs move out of its way — never a live one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.instance import LabletInstance
from domain.worker import Worker
from tests.api.test_instances_support import (
    ADMIN,
    API,
    AUTH,
    NOW,
    bring_up,
    instance_client,
    place,
    request_instance,
    running_worker,
    system_ctx,
)
from tests.api.test_templates_support import template_body

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        small = template_body(capacity={"cpu_cores": 4, "memory_gb": 16, "storage_gb": 40})  # two sample labs
        assert pair[0].put(f"{API}/worker-templates/small", json=small, headers=ADMIN).status_code == 201
        yield pair


def live_lab(client: TestClient, container: Container, worker_id: str, minutes: int) -> str:
    instance_id = request_instance(client, "user", duration_minutes=minutes)["id"]
    place(container, instance_id, worker_id)
    bring_up(container, instance_id, advance=timedelta(0))
    return instance_id


def future_lab(client: TestClient, container: Container, worker_id: str, start_in: timedelta) -> str:
    instance_id = request_instance(client, "user", timeslot_start=(NOW + start_in).isoformat(),
                                   duration_minutes=30)["id"]
    place(container, instance_id, worker_id)
    return instance_id


def slow_teardown(container: Container, instance_id: str) -> None:
    """Its timeslot ended and the lab is stopping, slowly (CML has not confirmed yet)."""
    instance: LabletInstance = container.store.get(instance_id)
    instance.request_stop("timeslot_end", system_ctx(container, "system:instance-controller"))
    container.store.save(instance)


def at(container: Container, offset: timedelta) -> None:
    container.clock.advance(NOW + offset - container.clock.now())  # type: ignore[attr-defined]


def overrun_setting(client: TestClient, container: Container) -> tuple[str, str, str, str]:
    """On one small worker: A (ends first, overruns), D (live, longer), B (booked after A's hold)."""
    worker = running_worker(client, container, "small")
    a = live_lab(client, container, worker, 30)  # hold NOW .. NOW+60
    d = live_lab(client, container, worker, 90)  # hold NOW .. NOW+120
    b = future_lab(client, container, worker, timedelta(minutes=75))  # hold NOW+60 .. NOW+135
    slow_teardown(container, a)
    return worker, a, d, b


def test_an_overrunning_lab_moves_only_the_future_lab_in_its_way(app: Client) -> None:
    client, container = app
    worker, a, d, b = overrun_setting(client, container)
    other = running_worker(client, container, "small")
    at(container, timedelta(minutes=57))  # A's hold ends in 3 minutes, A is still stopping
    container.wait_for_position(container.store.max_position(), 5)
    container.housekeeping_tick()
    extended: LabletInstance = container.store.get(a)
    assert extended.worker_id == worker and extended.hold_end == NOW + timedelta(minutes=90)
    assert extended.timeslot_end == NOW + timedelta(minutes=30)  # the booking itself is unchanged
    moved: LabletInstance = container.store.get(b)
    assert moved.worker_id == other and moved.state.value == "SCHEDULED"
    assert moved.hold_start == NOW + timedelta(minutes=60)  # its booked window is kept
    live: LabletInstance = container.store.get(d)
    assert live.worker_id == worker and live.hold_end == NOW + timedelta(minutes=120)  # never moves
    ledger = container.store.get(worker).ledger
    assert ledger.get(a).hold_end == NOW + timedelta(minutes=90) and ledger.get(b) is None
    timeline = client.get(f"{API}/instances/{a}/timeline", params={"min_position": container.store.max_position()},
                          headers=AUTH["admin"]).json()["items"]
    assert [e for e in timeline if e["type"] == "InstanceHoldExtended"][0]["actor"] == "system:overrun"


def test_with_no_room_elsewhere_the_future_lab_goes_back_to_the_queue(app: Client) -> None:
    client, container = app
    worker, a, d, b = overrun_setting(client, container)
    at(container, timedelta(minutes=57))
    container.wait_for_position(container.store.max_position(), 5)
    container.housekeeping_tick()
    assert container.store.get(a).hold_end == NOW + timedelta(minutes=90)
    requeued: LabletInstance = container.store.get(b)
    assert requeued.state.value == "PENDING" and requeued.worker_id is None
    assert container.store.get(d).worker_id == worker
    w: Worker = container.store.get(worker)
    assert w.ledger.get(b) is None and w.ledger.get(d) is not None


def test_labs_not_near_the_end_of_their_hold_and_finished_labs_are_left_alone(app: Client) -> None:
    client, container = app
    worker, a, d, b = overrun_setting(client, container)
    at(container, timedelta(minutes=40))  # A's hold ends in 20 minutes: not yet
    container.wait_for_position(container.store.max_position(), 5)
    container.housekeeping_tick()
    assert container.store.get(a).hold_end == NOW + timedelta(minutes=60)
    assert container.store.get(b).worker_id == worker
    # a second tick at the same moment changes nothing either (level-triggered, idempotent)
    before = container.store.max_position()
    container.housekeeping_tick()
    assert container.store.max_position() == before


def test_an_overrun_repeats_while_the_lab_still_runs_and_never_overbooks(app: Client) -> None:
    client, container = app
    worker, a, d, b = overrun_setting(client, container)
    for minutes in (57, 87, 117):
        at(container, timedelta(minutes=minutes))
        container.wait_for_position(container.store.max_position(), 5)
        container.housekeeping_tick()
    w: Worker = container.store.get(worker)
    assert w.ledger.get(a).hold_end == NOW + timedelta(minutes=150)
    for t in range(0, 200, 5):
        used, _nodes = w.ledger.usage_at(NOW + timedelta(minutes=t))
        assert used.cpu_cores <= w.capacity.cpu_cores
