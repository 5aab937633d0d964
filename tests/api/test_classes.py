"""``/classes``: a class books every seat or none, idempotently, and is run as a whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.lab_class import LabClass
from domain.worker import Worker
from processors.commands.classes import ClassRequest, ClassService, seat_instance_id
from processors.commands.instances import Caller
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
    system_ctx,
)
from tests.api.test_templates_support import template_body

Client = tuple[TestClient, Container]
INSTRUCTOR = AUTH["instructor"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        tiny = template_body(capacity={"cpu_cores": 2, "memory_gb": 8, "storage_gb": 20})
        assert pair[0].put(f"{API}/worker-templates/tiny", json=tiny, headers=ADMIN).status_code == 201
        yield pair


def owners(n: int) -> list[str]:
    return [f"student-{i:03d}" for i in range(n)]


def book(client: TestClient, n: int = 5, *, headers: dict[str, str] | None = None, **body: Any):
    body = {"definition": "ccna-basic-routing", "duration_minutes": 60, "owners": owners(n), **body}
    return client.post(f"{API}/classes", json=body, headers={**INSTRUCTOR, **(headers or {})})


def test_a_class_books_every_seat_on_the_ledger_and_shows_them(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    response = book(client, 5, timeslot_start=(NOW + timedelta(hours=2)).isoformat())
    assert response.status_code == 201, response.text
    class_id = response.json()["id"]
    assert response.json()["seats"] == 5
    shown = client.get(f"{API}/classes/{class_id}", params=caught_up(container), headers=INSTRUCTOR).json()
    assert [s["owner_id"] for s in shown["seats"]] == owners(5)
    assert {s["state"] for s in shown["seats"]} == {"SCHEDULED"} and shown["by_state"] == {"SCHEDULED": 5}
    assert {s["worker_id"] for s in shown["seats"]} == {worker_id}
    worker: Worker = container.store.get(worker_id)
    assert {r.instance_id for r in worker.ledger} == {s["instance_id"] for s in shown["seats"]}
    listed = client.get(f"{API}/instances", params={"reservation_id": class_id, **caught_up(container)},
                        headers=ADMIN).json()["items"]
    assert len(listed) == 5  # the seats are ordinary instances, the class id their reservation_id


def test_a_class_that_does_not_fit_books_nothing_and_says_when_it_would(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container, "tiny")
    busy = request_instance(client, "user", duration_minutes=60)["id"]  # holds the tiny worker to NOW+90
    place(container, busy, worker_id)
    before = head(container)
    response = book(client, 1)
    assert_problem(response, 409)
    body = response.json()
    assert body["title"] == "Class does not fit"
    assert body["unplaced_count"] == 1 and body["placed_count"] == 0
    assert body["unplaced"][0]["owner_id"] == "student-000" and body["unplaced"][0]["reasons"]
    # the busy lab's hold ends at NOW+90; a seat's hold starts 15 min before its timeslot
    assert datetime.fromisoformat(body["earliest_fit"]) == NOW + timedelta(minutes=105)
    assert by_callers(container, before) == []
    assert not [e for e in container.store.read_all(after=0, limit=10_000) if e.stream_id.startswith("LabClass-")]


def test_all_or_nothing_when_only_some_seats_fit(app: Client) -> None:
    client, container = app
    running_worker(client, container, "tiny")
    running_worker(client, container, "tiny")
    before = head(container)
    response = book(client, 3)
    assert_problem(response, 409)
    assert response.json()["placed_count"] == 2 and response.json()["unplaced_count"] == 1
    assert by_callers(container, before) == []
    assert book(client, 2).status_code == 201


def test_the_same_idempotency_key_books_one_class(app: Client) -> None:
    client, container = app
    running_worker(client, container)
    key = {"Idempotency-Key": "exam-7"}
    first = book(client, 3, headers=key)
    again = book(client, 3, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert_problem(book(client, 4, headers=key), 409)
    classes = {e.stream_id for e in container.store.read_all(after=0, limit=10_000)
               if e.stream_id.startswith("LabClass-")}
    assert classes == {first.json()["id"]}


class CrashingStore:
    """The event store, but ``save`` fails once: before writing (a crash mid-booking) or after."""

    def __init__(self, store: Any, *, after_write: bool) -> None:
        self.store, self.after_write, self.crashed = store, after_write, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save(self, *aggregates: Any) -> int:
        if not self.crashed:
            self.crashed = True
            if self.after_write:
                self.store.save(*aggregates)
            raise RuntimeError("process killed")
        return self.store.save(*aggregates)


@pytest.mark.parametrize("after_write", [False, True])
def test_after_a_crash_mid_booking_a_retry_with_the_same_key_yields_one_class(app: Client, after_write: bool) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    container.wait_for_position(head(container), 5)
    crashing = CrashingStore(container.store, after_write=after_write)
    service = ClassService(crashing, container.instance_service, container.extension_service,
                           container.live_worker_ids)
    request = ClassRequest(definition="ccna-basic-routing", owners=tuple(owners(8)), duration_minutes=60)
    instructor = Caller("instructor", "ins")
    with pytest.raises(RuntimeError):
        service.book(request, instructor, system_ctx(container, "instructor:ins"), idempotency_key="k-1")
    retried = service.book(request, instructor, system_ctx(container, "instructor:ins"), idempotency_key="k-1")
    assert retried.created is (not after_write) and retried.seats == 8
    streams = {e.stream_id for e in container.store.read_all(after=0, limit=10_000)}
    assert [s for s in streams if s.startswith("LabClass-")] == [retried.class_id]
    seats = {seat_instance_id(retried.class_id, owner) for owner in owners(8)}
    assert seats <= streams
    worker: Worker = container.store.get(worker_id)
    assert {r.instance_id for r in worker.ledger} == seats  # each seat reserved once


def test_cancel_extend_and_collect_the_whole_class(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    class_id = book(client, 3).json()["id"]
    lab_class: LabClass = container.store.get(class_id)
    seats = lab_class.instance_ids
    extended = client.post(f"{API}/classes/{class_id}/extend", json={"minutes": 15}, headers=INSTRUCTOR)
    assert extended.status_code == 202, extended.text
    assert sorted(extended.json()["instance_ids"]) == sorted(seats)
    for seat in seats:
        assert container.store.get(seat).timeslot_end == NOW + timedelta(minutes=75)
    assert container.store.get(class_id).timeslot_end == NOW + timedelta(minutes=75)
    for seat in seats:
        bring_up(container, seat, advance=timedelta(0))
    collected = client.post(f"{API}/classes/{class_id}/collect", headers=INSTRUCTOR)
    assert collected.status_code == 202 and len(collected.json()["instance_ids"]) == 3
    assert {container.store.get(s).state.value for s in seats} == {"COLLECTING"}
    cancelled = client.delete(f"{API}/classes/{class_id}", headers=INSTRUCTOR)
    assert cancelled.status_code == 202
    assert {container.store.get(s).state.value for s in seats} == {"TERMINATED"}
    assert len(container.store.get(worker_id).ledger) == 0
    assert_problem(client.delete(f"{API}/classes/{class_id}", headers=INSTRUCTOR), 409)


def test_extending_a_class_is_all_or_nothing(app: Client) -> None:
    client, container = app
    running_worker(client, container)
    class_id = book(client, 2, duration_minutes=80).json()["id"]  # the definition allows 90
    before = head(container)
    response = client.post(f"{API}/classes/{class_id}/extend", json={"minutes": 20}, headers=INSTRUCTOR)
    assert_problem(response, 409)
    assert response.json()["longest_extension_minutes"] == 10
    assert by_callers(container, before) == []


def test_queued_classes_wait_for_the_scheduler(app: Client) -> None:
    client, container = app
    response = book(client, 4, queue=True)  # no worker at all
    assert response.status_code == 201
    shown = client.get(f"{API}/classes/{response.json()['id']}", params=caught_up(container),
                       headers=INSTRUCTOR).json()
    assert shown["queued"] and shown["by_state"] == {"PENDING": 4}


def test_who_may_book_and_what_is_refused(app: Client) -> None:
    client, container = app
    running_worker(client, container)
    body = {"definition": "ccna-basic-routing", "duration_minutes": 30, "owners": ["a"]}
    for role in ("user", "grader"):
        assert_problem(client.post(f"{API}/classes", json=body, headers=AUTH[role]), 403)
    assert client.post(f"{API}/classes", json=body, headers=AUTH["service"]).status_code == 201
    assert_problem(client.post(f"{API}/classes", json={**body, "owners": ["a", "a"]}, headers=INSTRUCTOR), 422)
    assert_problem(client.post(f"{API}/classes", json={**body, "owners": owners(501)}, headers=INSTRUCTOR), 422)
    assert_problem(client.post(f"{API}/classes", json={**body, "owners": []}, headers=INSTRUCTOR), 422)
    assert_problem(client.post(f"{API}/classes", json={**body, "definition": "nope"}, headers=INSTRUCTOR), 422)
    assert_problem(client.get(f"{API}/classes/LabClass-00000000-0000-0000-0000-000000000000",
                              headers=INSTRUCTOR), 404)
