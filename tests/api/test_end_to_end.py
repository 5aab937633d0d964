"""End to end over real HTTP: uvicorn on a free port, an httpx client, the whole instance story.

Seeded templates → a definition published over HTTP → instances requested by a user and by a
service → lists with filters and read-your-writes → refusals for the wrong role and the wrong
owner → a placement (played here: the scheduler is a processor of its own) → termination
that releases the worker's capacity → the timeline, ``state?at=``, the event feed, SSE, metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from domain.worker import Worker
from tests.api.test_events import read_sse
from tests.api.test_instances_support import API, NOW, TOKENS, definition_body, place, serve, system_ctx

BOB = {"Authorization": "Bearer usr2"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN, INSTRUCTOR, ALICE, GRADER, EXAM = (bearer(t) for t in ("adm", "ins", "usr", "grd", "svc"))


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[httpx.Client, Container, VirtualClock]]:
    clock = VirtualClock(NOW)
    container = Container(Settings(data_dir=tmp_path, store="sqlite", tokens=TOKENS), clock=clock)
    with serve(create_app(container)) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        yield http, container, clock


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_life_of_a_lablet_over_http(live: tuple[httpx.Client, Container, VirtualClock]) -> None:
    http, container, clock = live

    # Operators: templates were seeded at start; publish a definition; provision a worker.
    templates = ok(http.get(f"{API}/worker-templates", headers=ADMIN))
    assert "personal-standard" in {t["name"] for t in templates["items"]}
    published = ok(http.post(f"{API}/definitions", json=definition_body(), headers=ADMIN), 201)
    assert published["version"] == "1.0.0"
    worker_id = ok(http.post(f"{API}/workers", json={"template": "personal-standard"}, headers=ADMIN), 201)["id"]
    worker: Worker = container.store.get(worker_id)  # the worker controller's part: it boots
    worker.start_provisioning("i-0abc", system_ctx(container))
    worker.mark_ready("10.0.0.7", system_ctx(container))
    container.store.save(worker)

    # A user books now (idempotently); the exam service books for a student tomorrow.
    body = {"definition": "ccna-basic-routing", "duration_minutes": 60, "owner_id": "mallory"}
    alices = ok(http.post(f"{API}/instances", json=body, headers={**ALICE, "Idempotency-Key": "b-1"}), 201)
    again = ok(http.post(f"{API}/instances", json=body, headers={**ALICE, "Idempotency-Key": "b-1"}), 200)
    assert again["id"] == alices["id"]
    refused(http.post(f"{API}/instances", json={**body, "duration_minutes": 30},
                      headers={**ALICE, "Idempotency-Key": "b-1"}), 409)
    tomorrow = NOW + timedelta(days=1)
    exams = ok(http.post(f"{API}/instances", json={
        "definition": "ccna-basic-routing", "owner_id": "student-1", "reservation_id": "exam-7",
        "timeslot_start": tomorrow.isoformat(), "timeslot_end": (tomorrow + timedelta(minutes=90)).isoformat(),
    }, headers=EXAM), 201)

    # Read your writes: the position a command returns is what a query waits for.
    mine = ok(http.get(f"{API}/instances/{alices['id']}", params={"min_position": alices["position"]},
                       headers=ALICE))
    assert (mine["owner_id"], mine["state"], mine["definition_version"]) == ("alice", "PENDING", "1.0.0")
    caught_up = {"min_position": exams["position"]}

    def listed(headers: dict[str, str], **params: Any) -> list[str]:
        page = ok(http.get(f"{API}/instances", params={**caught_up, **params}, headers=headers))
        return [item["id"] for item in page["items"]]

    assert set(listed(INSTRUCTOR)) == {alices["id"], exams["id"]}
    assert listed(ALICE) == [alices["id"]]
    assert listed(EXAM) == [exams["id"]]
    assert listed(BOB) == []
    assert listed(INSTRUCTOR, **{"from": tomorrow.isoformat()}) == [exams["id"]]
    assert listed(INSTRUCTOR, owner_id="student-1", definition="ccna-basic-routing") == [exams["id"]]
    assert listed(INSTRUCTOR, state="RUNNING") == []

    # The wrong role is refused (403); the wrong owner cannot even see it (404); nothing recorded.
    head = container.store.max_position()
    refused(http.get(f"{API}/instances", headers=GRADER), 403)
    refused(http.post(f"{API}/instances", json={"definition": "ccna-basic-routing"}, headers=INSTRUCTOR), 403)
    refused(http.get(f"{API}/instances/{alices['id']}", headers=BOB), 404)
    refused(http.get(f"{API}/instances/{alices['id']}", headers=EXAM), 404)
    refused(http.delete(f"{API}/instances/{alices['id']}", headers=BOB), 404)
    refused(http.post(f"{API}/instances/{alices['id']}/login", headers=ALICE), 409)  # not ready yet
    refused(http.get(f"{API}/events", headers=ALICE), 403)
    assert container.store.max_position() == head

    # A minute later the scheduler places Alice's lab; a minute after that she cancels it.
    clock.advance(timedelta(minutes=1))
    ports = place(container, alices["id"], worker_id)
    clock.advance(timedelta(minutes=1))
    cancelled = ok(http.delete(f"{API}/instances/{alices['id']}", headers=ALICE), 202)
    assert cancelled["state"] == "TERMINATED"
    assert container.store.get(worker_id).ledger.get(alices["id"]) is None  # capacity given back

    # The timeline explains it all, in log order.
    timeline = ok(http.get(f"{API}/instances/{alices['id']}/timeline",
                           params={"min_position": cancelled["position"]}, headers=ALICE))
    steps = [(i["type"], i["actor"]) for i in timeline["items"] if i["type"] != "PlacementFailed"]
    assert steps == [
        ("InstanceRequested", "user:alice"),
        ("CapacityReserved", "system:scheduler"),
        ("PlacementDecided", "system:scheduler"),
        ("InstanceScheduled", "system:scheduler"),
        ("InstanceTerminated", "user:alice"),
        ("CapacityReleased", "user:alice"),
    ]
    assert all(i["description"] for i in timeline["items"])
    scheduled = next(i for i in timeline["items"] if i["type"] == "InstanceScheduled")
    assert scheduled["data"]["allocated_ports"] == ports

    # ... and the state at any moment is the replay up to it.
    def state_at(moment: Any) -> httpx.Response:
        return http.get(f"{API}/instances/{alices['id']}/state", params={"at": moment.isoformat()},
                        headers=INSTRUCTOR)

    refused(state_at(NOW - timedelta(seconds=1)), 404)
    assert ok(state_at(NOW + timedelta(seconds=30)))["instance"]["state"] == "PENDING"
    at_90s = ok(state_at(NOW + timedelta(seconds=90)))["instance"]
    assert (at_90s["state"], at_90s["worker_id"], at_90s["allocated_ports"]) == ("SCHEDULED", worker_id, ports)
    final = ok(state_at(NOW + timedelta(minutes=5)))["instance"]
    assert (final["state"], final["termination_reason"]) == ("TERMINATED", "cancelled")

    # The global feed and its live stream carry the same events, positions as SSE ids.
    feed = ok(http.get(f"{API}/events", params={"after": head, "limit": 500}, headers=INSTRUCTOR))
    assert [e["type"] for e in feed["items"] if e["type"] != "PlacementFailed"][-2:] == [
        "InstanceTerminated", "CapacityReleased"]
    with http.stream("GET", f"{API}/events/stream", params={"after": head}, headers=ADMIN) as response:
        streamed = read_sse(response, len(feed["items"]))
    assert [int(e["id"]) for e in streamed] == [e["position"] for e in feed["items"]]
    assert [json.loads(e["data"]) for e in streamed] == feed["items"]

    # Metrics count instances by state.
    metrics = http.get("/metrics").text
    assert 'lrm_instances{state="TERMINATED"} 1.0' in metrics
    assert 'lrm_instances{state="PENDING"} 1.0' in metrics
