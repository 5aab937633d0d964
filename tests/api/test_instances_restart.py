"""``POST /instances/{id}/start``: a STOPPED lab restarts only while its reservation holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.instance import LabletInstance
from tests.api.test_instances_support import (
    ADMIN,
    API,
    AUTH,
    assert_problem,
    bring_up,
    by_callers,
    caught_up,
    head,
    instance_client,
    place,
    request_instance,
    running_worker,
    system_ctx,
)

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        yield pair


def stopped_lab(client: TestClient, container: Container) -> tuple[str, datetime]:
    """A lab stopped on request, its hold still on the worker; returns its id and hold_end."""
    instance_id = request_instance(client, "user", duration_minutes=60)["id"]
    place(container, instance_id, running_worker(client, container))
    bring_up(container, instance_id)
    assert client.post(f"{API}/instances/{instance_id}/stop", headers=AUTH["user"]).status_code == 202
    stop(container, instance_id)
    instance: LabletInstance = container.store.get(instance_id)
    assert instance.hold_end is not None
    return instance_id, instance.hold_end


def stop(container: Container, instance_id: str) -> None:
    """Play the instance controller: the lab is stopped on CML (STOPPING → STOPPED)."""
    instance: LabletInstance = container.store.get(instance_id)
    instance.mark_stopped(system_ctx(container, "system:instance-controller"))
    container.store.save(instance)


def move_clock_to(container: Container, at: datetime) -> None:
    container.clock.advance(at - container.clock.now())  # type: ignore[attr-defined] - VirtualClock


@pytest.mark.parametrize(
    ("before_hold_end", "status"),
    [(timedelta(minutes=30), 202), (timedelta(microseconds=1), 202), (timedelta(0), 409),
     (-timedelta(seconds=1), 409), (-timedelta(days=1), 409)],
    ids=["30min-before", "just-before", "at-hold-end", "1s-after", "a-day-after"],
)
def test_start_needs_the_hold_to_last(app: Client, before_hold_end: timedelta, status: int) -> None:
    client, container = app
    instance_id, hold_end = stopped_lab(client, container)
    move_clock_to(container, hold_end - before_hold_end)
    before = head(container)
    response = client.post(f"{API}/instances/{instance_id}/start", headers=ADMIN)
    assert response.status_code == status, response.text
    doc = client.get(f"{API}/instances/{instance_id}", params=caught_up(container), headers=ADMIN).json()
    if status == 202:
        assert response.json()["state"] == "RUNNING" and doc["state"] == "RUNNING"
        assert by_callers(container, before) == ["InstanceRestarted"]
        return
    body = assert_problem(response, 409)
    assert body["title"] == "Reservation ended"
    assert hold_end.isoformat() in body["detail"]
    assert by_callers(container, before) == []  # refused: nothing appended
    assert doc["state"] == "STOPPED"


def test_a_lab_restarted_in_time_and_stopped_again_cannot_restart_after_its_hold(app: Client) -> None:
    client, container = app
    instance_id, hold_end = stopped_lab(client, container)
    move_clock_to(container, hold_end - timedelta(minutes=20))
    assert client.post(f"{API}/instances/{instance_id}/start", headers=ADMIN).status_code == 202
    assert client.post(f"{API}/instances/{instance_id}/stop", headers=ADMIN).status_code == 202
    stop(container, instance_id)
    move_clock_to(container, hold_end + timedelta(minutes=1))
    assert_problem(client.post(f"{API}/instances/{instance_id}/start", headers=ADMIN), 409)


def test_the_state_is_checked_before_the_hold(app: Client) -> None:
    """A lab still STOPPING after its hold ended is refused for its state (the usual 409)."""
    client, container = app
    instance_id = request_instance(client, "user", duration_minutes=60)["id"]
    place(container, instance_id, running_worker(client, container))
    bring_up(container, instance_id)
    assert client.post(f"{API}/instances/{instance_id}/stop", headers=AUTH["user"]).status_code == 202
    container.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    body = assert_problem(client.post(f"{API}/instances/{instance_id}/start", headers=ADMIN), 409)
    assert body["title"] == "Illegal state transition" and body["state"] == "STOPPING"


def test_the_service_refuses_it_too(app: Client) -> None:
    """The rule lives in the aggregate: any caller of ``restart`` meets it, not only the route."""
    from domain.errors import Conflict
    from processors.commands.instances import Caller

    client, container = app
    instance_id, hold_end = stopped_lab(client, container)
    move_clock_to(container, hold_end)
    with pytest.raises(Conflict, match="reservation"):
        container.instance_service.start(instance_id, Caller("admin", "adm"), system_ctx(container, "admin:adm"))
