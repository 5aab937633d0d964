"""``POST /instances/{id}/extend``: granted when the ledger allows, future labs moved, else a 409 that explains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
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
    assert_problem,
    bring_up,
    by_callers,
    caught_up,
    head,
    instance_client,
    place,
    request_instance,
    running_worker,
)
from tests.api.test_instances_support import publish
from tests.api.test_templates_support import control_client, template_body

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        client = pair[0]
        # one sample lab (2 cpu) fills a "tiny" worker
        tiny = template_body(capacity={"cpu_cores": 2, "memory_gb": 8, "storage_gb": 20})
        assert client.put(f"{API}/worker-templates/tiny", json=tiny, headers=ADMIN).status_code == 201
        yield pair


def running_lab(client: TestClient, container: Container, worker_id: str, minutes: int = 60, **body: object) -> str:
    instance_id = request_instance(client, "user", duration_minutes=minutes, **body)["id"]
    place(container, instance_id, worker_id)
    bring_up(container, instance_id)
    return instance_id


def extend(client: TestClient, instance_id: str, minutes: object, role: str = "user") -> tuple[int, dict]:
    response = client.post(f"{API}/instances/{instance_id}/extend", json={"minutes": minutes}, headers=AUTH[role])
    return response.status_code, response.json()


def test_the_owner_extends_a_running_lab_and_its_hold_moves_with_it(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    instance_id = running_lab(client, container, worker_id)
    before: LabletInstance = container.store.get(instance_id)
    status, body = extend(client, instance_id, 20)
    assert status == 202, body
    after: LabletInstance = container.store.get(instance_id)
    assert after.timeslot_end == before.timeslot_end + timedelta(minutes=20)
    assert after.hold_end == before.hold_end + timedelta(minutes=20)
    assert body["moved"] == [] and datetime.fromisoformat(body["timeslot_end"]) == after.timeslot_end
    worker: Worker = container.store.get(worker_id)
    assert worker.ledger.get(instance_id).hold_end == after.hold_end
    timeline = client.get(f"{API}/instances/{instance_id}/timeline", params=caught_up(container),
                          headers=AUTH["user"]).json()["items"]
    types = [item["type"] for item in timeline]
    assert "InstanceExtended" in types and "ReservationExtended" in types
    extended = next(item for item in timeline if item["type"] == "InstanceExtended")
    assert "Extended by 20 min" in extended["description"] and extended["actor"] == "user:alice"
    doc = client.get(f"{API}/instances/{instance_id}", params=caught_up(container), headers=AUTH["user"]).json()
    assert datetime.fromisoformat(doc["timeslot_end"]) == after.timeslot_end


def test_only_the_owner_an_instructor_or_an_admin_may_extend(app: Client) -> None:
    client, container = app
    instance_id = running_lab(client, container, running_worker(client, container))
    other = client.post(f"{API}/instances/{instance_id}/extend", json={"minutes": 5},
                        headers={"Authorization": "Bearer usr2"})
    assert_problem(other, 404)
    assert_problem(client.post(f"{API}/instances/{instance_id}/extend", json={"minutes": 5},
                               headers=AUTH["grader"]), 403)
    assert extend(client, instance_id, 5, "instructor")[0] == 202
    assert extend(client, instance_id, 5, "admin")[0] == 202


def test_bad_minutes_are_422_and_change_nothing(app: Client) -> None:
    client, container = app
    instance_id = running_lab(client, container, running_worker(client, container))
    before = head(container)
    for minutes in ("30", 0, -5, 10_000, 2.5):
        response = client.post(f"{API}/instances/{instance_id}/extend", json={"minutes": minutes},
                               headers=AUTH["user"])
        assert_problem(response, 422)
    assert by_callers(container, before) == []


def test_the_definition_maximum_caps_an_extension_and_the_refusal_says_how_far(app: Client) -> None:
    client, container = app
    instance_id = running_lab(client, container, running_worker(client, container), minutes=60)  # max 90
    before = head(container)
    status, body = extend(client, instance_id, 45)
    assert status == 409 and body["title"] == "Extension refused"
    assert body["longest_extension_minutes"] == 30
    assert any("max_duration_minutes" in reason for reason in body["reasons"])
    assert by_callers(container, before) == []
    assert extend(client, instance_id, 30)[0] == 202


def test_a_future_lab_in_the_way_is_moved_to_another_worker(app: Client) -> None:
    client, container = app
    first = running_worker(client, container, "tiny")
    live = running_lab(client, container, first, minutes=30)
    live_hold_end = container.store.get(live).hold_end
    # the next booking on the same tiny worker starts right after the live lab's hold
    start = live_hold_end + timedelta(minutes=15)
    future = request_instance(client, "user", timeslot_start=start.isoformat(), duration_minutes=30)["id"]
    place(container, future, first)
    second = running_worker(client, container, "tiny")
    status, body = extend(client, live, 30)
    assert status == 202, body
    assert body["moved"] == [future]
    moved: LabletInstance = container.store.get(future)
    assert moved.worker_id == second and moved.state.value == "SCHEDULED"
    assert moved.hold_start == start - timedelta(minutes=15)  # the booked window is kept
    assert container.store.get(first).ledger.get(future) is None
    assert container.store.get(second).ledger.get(future) is not None
    assert container.store.get(live).worker_id == first  # the live lab never moves


def test_when_nothing_can_move_the_refusal_gives_the_reasons_and_the_longest_extension(app: Client) -> None:
    client, container = app
    first = running_worker(client, container, "tiny")
    live = running_lab(client, container, first, minutes=30)
    live_hold_end = container.store.get(live).hold_end
    start = live_hold_end + timedelta(minutes=10) + timedelta(minutes=15)  # its hold starts 10 min later
    future = request_instance(client, "user", timeslot_start=start.isoformat(), duration_minutes=30)["id"]
    place(container, future, first)
    before = head(container)
    status, body = extend(client, live, 30)
    assert status == 409, body
    assert body["longest_extension_minutes"] == 10
    assert any(future in reason for reason in body["reasons"])
    assert by_callers(container, before) == []
    assert container.store.get(future).worker_id == first
    assert extend(client, live, 10)[0] == 202


def test_a_lab_inside_its_instantiation_lead_is_never_moved(tmp_path: Path) -> None:
    # a 2-hour lead: the next lab, booked right after the live one's hold, is already due
    with control_client(tmp_path, instantiation_lead_minutes=120) as (client, container):
        publish(client)
        tiny = template_body(capacity={"cpu_cores": 2, "memory_gb": 8, "storage_gb": 20})
        assert client.put(f"{API}/worker-templates/tiny", json=tiny, headers=ADMIN).status_code == 201
        first = running_worker(client, container, "tiny")
        live = running_lab(client, container, first, minutes=30)
        start = container.store.get(live).hold_end + timedelta(minutes=15)
        future = request_instance(client, "user", timeslot_start=start.isoformat(), duration_minutes=30)["id"]
        place(container, future, first)
        running_worker(client, container, "tiny")  # room elsewhere, but the lab is due to instantiate
        status, body = extend(client, live, 30)
        assert status == 409, body
        assert container.store.get(future).worker_id == first


def test_a_pending_lab_gets_a_longer_timeslot_without_any_hold(app: Client) -> None:
    client, container = app
    instance_id = request_instance(client, "user", duration_minutes=30)["id"]
    status, body = extend(client, instance_id, 15)
    assert status == 202 and body["hold_end"] is None
    assert container.store.get(instance_id).timeslot_end == NOW + timedelta(minutes=45)


def test_a_finished_lab_cannot_be_extended(app: Client) -> None:
    client, container = app
    instance_id = running_lab(client, container, running_worker(client, container))
    assert client.delete(f"{API}/instances/{instance_id}", headers=AUTH["user"]).status_code == 202
    status, body = extend(client, instance_id, 5)
    assert status == 409 and body["state"] == "TERMINATED"
