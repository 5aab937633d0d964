"""``/instances``: requests, idempotency, roles and ownership, lists, commands, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from projections.readmodel import encode_cursor
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
    event_at,
    deprecate,
    head,
    instance_client,
    place,
    publish,
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
    """One app for the tests that only check refusals (each compares positions before and after)."""
    with instance_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def read(client: TestClient, container: Container, instance_id: str, role: str = "admin") -> Any:
    return client.get(f"{API}/instances/{instance_id}", params=caught_up(container), headers=AUTH[role])


# -- requesting --------------------------------------------------------------------------------
def test_a_user_books_for_itself_whatever_owner_it_names(app: Client) -> None:
    client, container = app
    accepted = request_instance(client, "user", owner_id="bob", duration_minutes=60)
    assert accepted["state"] == "PENDING"
    assert event_at(container, accepted["position"]) == ("InstanceRequested", accepted["id"])
    doc = read(client, container, accepted["id"], "user").json()
    assert doc["owner_id"] == "alice"
    assert doc["requested_by"] == "user:alice"
    assert doc["definition_version"] == "1.0.0"  # the latest, pinned
    assert doc["timeslot_start"] is None  # ASAP
    assert doc["timeslot_end"] == (NOW + timedelta(minutes=60)).isoformat().replace("+00:00", "Z")


def test_a_service_books_for_the_owner_it_names_and_must_name_one(app: Client) -> None:
    client, container = app
    before = head(container)
    response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing"}, headers=AUTH["service"])
    assert_problem(response, 422, "owner_id")
    assert by_callers(container, before) == []
    accepted = request_instance(client, "service", owner_id="student-7", reservation_id="exam-42")
    doc = read(client, container, accepted["id"], "service").json()
    assert (doc["owner_id"], doc["requested_by"], doc["reservation_id"]) == ("student-7", "service:exam", "exam-42")


def test_a_future_slot_is_kept_and_the_version_can_be_pinned(app: Client) -> None:
    client, container = app
    publish(client, version="1.1.0")
    start = NOW + timedelta(days=1)
    accepted = request_instance(client, "admin", version="1.0.0", owner_id="carol",
                                timeslot_start=start.isoformat(), timeslot_end=(start + timedelta(hours=1)).isoformat())
    doc = read(client, container, accepted["id"]).json()
    assert doc["definition_version"] == "1.0.0"
    assert doc["timeslot_start"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    latest = request_instance(client, "admin", owner_id="carol")
    assert read(client, container, latest["id"]).json()["definition_version"] == "1.1.0"


@pytest.mark.parametrize(
    ("role", "status"),
    [("admin", 201), ("user", 201), ("service", 201), ("instructor", 403), ("grader", 403)],
)
def test_who_may_request(shared: Client, role: str, status: int) -> None:
    client, container = shared
    before = head(container)
    response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "owner_id": "x"},
                           headers=AUTH[role])
    assert response.status_code == status, response.text
    assert by_callers(container, before) == ([] if status == 403 else ["InstanceRequested"])


def test_no_token_is_401(shared: Client) -> None:
    client, _ = shared
    assert_problem(client.post(f"{API}/instances", json={"definition": "ccna-basic-routing"}), 401)


# -- idempotency -----------------------------------------------------------------------------
def test_same_key_same_body_is_the_same_instance(app: Client) -> None:
    client, container = app
    body = {"duration_minutes": 30}
    first = request_instance(client, "user", headers={"Idempotency-Key": "k-1"}, **body)
    after_first = head(container)
    again = request_instance(client, "user", headers={"Idempotency-Key": "k-1"}, expect=200, **body)
    assert again["id"] == first["id"]
    assert by_callers(container, after_first) == []  # nothing recorded the second time


def test_same_key_other_body_is_a_conflict(app: Client) -> None:
    client, container = app
    request_instance(client, "user", headers={"Idempotency-Key": "k-2"}, duration_minutes=30)
    before = head(container)
    response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "duration_minutes": 45},
                           headers={**AUTH["user"], "Idempotency-Key": "k-2"})
    body = assert_problem(response, 409)
    assert "Idempotency-Key" in body["detail"]
    assert by_callers(container, before) == []


def test_keys_belong_to_their_caller(app: Client) -> None:
    client, _ = app
    mine = request_instance(client, "user", headers={"Idempotency-Key": "shared"})
    theirs = request_instance(client, "service", headers={"Idempotency-Key": "shared"}, owner_id="alice")
    assert mine["id"] != theirs["id"]


def test_racing_requests_with_one_key_make_one_instance(app: Client) -> None:
    client, container = app
    before = head(container)

    def send(_: int) -> Any:
        return client.post(f"{API}/instances", json={"definition": "ccna-basic-routing"},
                           headers={**AUTH["user"], "Idempotency-Key": "race"})

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(send, range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert by_callers(container, before) == ["InstanceRequested"]


# -- bad input: a problem naming the field, and nothing appended ------------------------------
BAD_BODIES: list[tuple[str, Any, int, str | None]] = [
    ("unknown field", {"definition": "ccna-basic-routing", "colour": "red"}, 422, "colour"),
    ("missing definition", {"owner_id": "x"}, 422, "definition"),
    ("definition not a string", {"definition": 5}, 422, "definition"),
    ("name too long", {"definition": "a" * 201}, 422, "definition"),
    ("owner too long", {"definition": "ccna-basic-routing", "owner_id": "o" * 201}, 422, "owner_id"),
    ("minutes as text", {"definition": "ccna-basic-routing", "duration_minutes": "30"}, 422, "duration_minutes"),
    ("zero minutes", {"definition": "ccna-basic-routing", "duration_minutes": 0}, 422, "duration_minutes"),
    ("naive time", {"definition": "ccna-basic-routing", "timeslot_end": "2026-11-28T10:00:00"}, 422,
     "timeslot_end"),
    ("not a time", {"definition": "ccna-basic-routing", "timeslot_end": "tomorrow"}, 422, "timeslot_end"),
    ("unknown definition", {"definition": "no-such-lab"}, 422, "definition"),
    ("unknown version", {"definition": "ccna-basic-routing", "version": "9.9.9"}, 422, "version"),
    ("end before start", {"definition": "ccna-basic-routing", "timeslot_start": "2026-11-29T10:00:00Z",
                          "timeslot_end": "2026-11-29T09:00:00Z"}, 422, "timeslot_end"),
    ("longer than the definition allows", {"definition": "ccna-basic-routing", "duration_minutes": 91}, 422,
     "timeslot_end"),
    ("end and duration disagree", {"definition": "ccna-basic-routing", "duration_minutes": 30,
                                   "timeslot_end": "2026-11-28T09:45:00Z"}, 422, "duration_minutes"),
    ("body not an object", ["ccna-basic-routing"], 422, None),
]


@pytest.mark.parametrize(("case", "body", "status", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_requests_are_problems_and_append_nothing(
    shared: Client, case: str, body: Any, status: int, field: str | None
) -> None:
    client, container = shared
    before = head(container)
    response = client.post(f"{API}/instances", json=body, headers=AUTH["admin"])
    assert_problem(response, status, field)
    assert by_callers(container, before) == []


def test_malformed_json_is_400(shared: Client) -> None:
    client, container = shared
    before = head(container)
    response = client.post(f"{API}/instances", content=b'{"definition": ',
                           headers={**ADMIN, "content-type": "application/json"})
    assert_problem(response, 400)
    assert by_callers(container, before) == []


def test_an_oversized_body_is_413(shared: Client) -> None:
    client, container = shared
    before = head(container)
    body = {"definition": "ccna-basic-routing", "reservation_id": "r" * 20_000}
    response = client.post(f"{API}/instances", json=body, headers=ADMIN)
    assert_problem(response, 413, "body")
    assert by_callers(container, before) == []


def test_oversized_idempotency_key_is_422(shared: Client) -> None:
    client, container = shared
    before = head(container)
    response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing"},
                           headers={**AUTH["user"], "Idempotency-Key": "k" * 201})
    assert_problem(response, 422, "Idempotency-Key")
    assert by_callers(container, before) == []


def test_a_deprecated_definition_takes_no_new_instances(app: Client) -> None:
    client, container = app
    deprecate(client)
    before = head(container)
    response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing"}, headers=AUTH["user"])
    assert_problem(response, 409)
    assert by_callers(container, before) == []


# -- ownership ----------------------------------------------------------------------------------
def test_others_instances_are_not_found_for_users_and_services(app: Client) -> None:
    client, container = app
    alices = request_instance(client, "user")["id"]
    for role in ("instructor", "admin"):
        assert read(client, container, alices, role).status_code == 200
    assert read(client, container, alices, "user").status_code == 200
    assert_problem(client.get(f"{API}/instances/{alices}", params=caught_up(container),
                              headers={"Authorization": "Bearer usr2"}), 404)
    assert_problem(read(client, container, alices, "service"), 404)  # the service did not request it
    assert_problem(read(client, container, alices, "grader"), 403)
    before = head(container)
    for path in ("login", "collect", "stop"):
        assert_problem(client.post(f"{API}/instances/{alices}/{path}", headers={"Authorization": "Bearer usr2"}),
                       404)
    assert_problem(client.delete(f"{API}/instances/{alices}", headers={"Authorization": "Bearer usr2"}), 404)
    assert by_callers(container, before) == []


@pytest.mark.parametrize("instance_id", ["LabletInstance-00000000-0000-0000-0000-000000000000", "nope",
                                         "Worker-00000000-0000-0000-0000-000000000000"])
def test_unknown_ids_are_404(shared: Client, instance_id: str) -> None:
    client, container = shared
    before = head(container)
    assert_problem(read(client, container, instance_id), 404)
    assert_problem(client.post(f"{API}/instances/{instance_id}/stop", headers=ADMIN), 404)
    assert_problem(client.delete(f"{API}/instances/{instance_id}", headers=ADMIN), 404)
    assert_problem(client.get(f"{API}/instances/{instance_id}/timeline", headers=ADMIN), 404)
    assert_problem(client.get(f"{API}/instances/{instance_id}/state", params={"at": NOW.isoformat()},
                              headers=ADMIN), 404)
    assert by_callers(container, before) == []


def test_a_worker_id_is_not_an_instance(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    assert_problem(client.post(f"{API}/instances/{worker_id}/stop", headers=ADMIN), 404)


# -- lists ---------------------------------------------------------------------------------------
def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_lists_are_scoped_and_filtered(app: Client) -> None:
    client, container = app
    alice_now = request_instance(client, "user")["id"]
    day = NOW + timedelta(days=1)
    alice_later = request_instance(client, "user", timeslot_start=day.isoformat(), duration_minutes=60)["id"]
    exam = request_instance(client, "service", owner_id="student-1", timeslot_start=day.isoformat())["id"]
    bobs = request_instance(client, "admin", owner_id="bob")["id"]
    worker_id = running_worker(client, container)
    place(container, alice_now, worker_id)

    def listed(role: str = "admin", **params: Any) -> list[str]:
        return _ids(client.get(f"{API}/instances", params={**caught_up(container), **params}, headers=AUTH[role]))

    assert set(listed()) == {alice_now, alice_later, exam, bobs}
    assert set(listed("instructor")) == {alice_now, alice_later, exam, bobs}
    assert set(listed("user")) == {alice_now, alice_later}
    assert listed("user", owner_id="bob") == []  # asking for someone else's shows none of theirs
    assert listed("service") == [exam]
    assert listed(state="SCHEDULED") == [alice_now]
    assert set(listed(state=["SCHEDULED", "PENDING"])) == {alice_now, alice_later, exam, bobs}
    assert listed(worker_id=worker_id) == [alice_now]
    assert set(listed(owner_id="alice")) == {alice_now, alice_later}
    assert listed(definition="other") == []
    # Booking windows overlapping [from, to): the ASAP ones run 09:00-10:30 today.
    tomorrow = {"from": day.isoformat(), "to": (day + timedelta(hours=2)).isoformat()}
    assert set(listed(**tomorrow)) == {alice_later, exam}
    today = {"from": NOW.isoformat(), "to": (NOW + timedelta(hours=1)).isoformat()}
    assert set(listed(**today)) == {alice_now, bobs}
    assert set(listed(**{"from": (NOW + timedelta(hours=2)).isoformat()})) == {alice_later, exam}
    assert set(listed(**{"to": (NOW + timedelta(hours=2)).isoformat()})) == {alice_now, bobs}
    assert listed("user", **tomorrow) == [alice_later]


@pytest.mark.parametrize("with_range", [False, True])
def test_pages_follow_cursors_without_gaps_or_repeats(app: Client, with_range: bool) -> None:
    client, container = app
    made = {request_instance(client, "admin", owner_id=f"o{i}",
                             timeslot_start=(NOW + timedelta(hours=i + 1)).isoformat())["id"] for i in range(7)}
    params: dict[str, Any] = {**caught_up(container), "limit": 3}
    if with_range:
        params["from"] = NOW.isoformat()
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        response = client.get(f"{API}/instances", params={**params, **({"cursor": cursor} if cursor else {})},
                              headers=ADMIN)
        seen += _ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(made)
    starts = [read(client, container, i).json()["slot_start"] for i in seen]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"cursor": "!!!"}, "cursor"), ({"cursor": encode_cursor(10**24, "x")}, "cursor"), ({"limit": 0}, "limit"),
     ({"limit": 501}, "limit"),
     ({"state": "SLEEPING"}, "state.0"), ({"from": "2026-11-28T10:00:00"}, "from"),
     ({"from": "2026-11-28T10:00:00Z", "to": "2026-11-28T09:00:00Z"}, "to")],
)
def test_bad_list_parameters_are_422(shared: Client, params: dict[str, Any], field: str) -> None:
    client, _ = shared
    assert_problem(client.get(f"{API}/instances", params=params, headers=ADMIN), 422, field)


def test_min_position_waits_for_the_read_model(app: Client) -> None:
    client, container = app
    accepted = request_instance(client, "user")
    response = client.get(f"{API}/instances/{accepted['id']}", params={"min_position": accepted["position"]},
                          headers=AUTH["user"])
    assert response.status_code == 200
    assert response.json()["position"] >= accepted["position"]


# -- commands -------------------------------------------------------------------------------------
def test_a_lab_through_login_collect_and_stop(app: Client) -> None:
    client, container = app
    instance_id = request_instance(client, "user")["id"]
    worker_id = running_worker(client, container)
    ports = place(container, instance_id, worker_id)
    # Too early: the lab is not ready yet.
    before = head(container)
    body = assert_problem(client.post(f"{API}/instances/{instance_id}/login", headers=AUTH["user"]), 409)
    assert body["state"] == "SCHEDULED"
    assert by_callers(container, before) == []
    bring_up(container, instance_id)
    response = client.post(f"{API}/instances/{instance_id}/login", headers=AUTH["user"])
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "RUNNING"
    assert event_at(container, response.json()["position"]) == ("UserLoggedIn", instance_id)
    assert client.post(f"{API}/instances/{instance_id}/collect", headers=AUTH["instructor"]).json()["state"] == (
        "COLLECTING")
    assert client.post(f"{API}/instances/{instance_id}/stop", headers=AUTH["instructor"]).json()["state"] == (
        "STOPPING")
    doc = read(client, container, instance_id, "user").json()
    assert doc["allocated_ports"] == ports
    assert doc["stop_reason"] == "instructor_request"
    assert set(doc["phase_times"]) >= {"PENDING", "SCHEDULED", "INSTANTIATING", "READY", "RUNNING", "COLLECTING",
                                       "STOPPING"}
    assert doc["user_session"]["login_url"] == "https://cml.example/lab-1"


@pytest.mark.parametrize(
    ("action", "role", "status"),
    [("login", "instructor", 403), ("login", "grader", 403), ("start", "user", 403), ("start", "instructor", 403),
     ("collect", "grader", 403), ("stop", "grader", 403)],
)
def test_roles_that_may_not_act(shared: Client, action: str, role: str, status: int) -> None:
    client, container = shared
    instance_id = request_instance(client, "user")["id"]
    before = head(container)
    assert_problem(client.post(f"{API}/instances/{instance_id}/{action}", headers=AUTH[role]), status)
    assert by_callers(container, before) == []


def test_start_restarts_a_stopped_lab(app: Client) -> None:
    client, container = app
    instance_id = request_instance(client, "user")["id"]
    place(container, instance_id, running_worker(client, container))
    bring_up(container, instance_id)
    client.post(f"{API}/instances/{instance_id}/stop", headers=AUTH["user"])
    assert_problem(client.post(f"{API}/instances/{instance_id}/start", headers=ADMIN), 409)  # still STOPPING
    from tests.api.test_instances_support import system_ctx

    instance = container.store.get(instance_id)
    instance.mark_stopped(system_ctx(container))
    container.store.save(instance)
    response = client.post(f"{API}/instances/{instance_id}/start", headers=ADMIN)
    assert response.status_code == 202
    assert response.json()["state"] == "RUNNING"


def test_collect_needs_a_definition_with_grading(app: Client) -> None:
    client, container = app
    publish(client, name="no-grading", grading_rules_uri=None)
    instance_id = request_instance(client, "user", definition="no-grading")["id"]
    place(container, instance_id, running_worker(client, container))
    bring_up(container, instance_id)
    body = assert_problem(client.post(f"{API}/instances/{instance_id}/collect", headers=AUTH["user"]), 409)
    assert body["state"] == "READY"


@pytest.mark.parametrize(("role", "reason"), [("user", "cancelled"), ("instructor", "admin"), ("admin", "admin")])
def test_terminate_releases_the_workers_capacity(app: Client, role: str, reason: str) -> None:
    client, container = app
    instance_id = request_instance(client, "user")["id"]
    worker_id = running_worker(client, container)
    place(container, instance_id, worker_id)
    worker: Worker = container.store.get(worker_id)
    assert worker.ledger.get(instance_id) is not None
    response = client.delete(f"{API}/instances/{instance_id}", headers=AUTH[role])
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "TERMINATED"
    worker = container.store.get(worker_id)
    assert worker.ledger.get(instance_id) is None
    doc = read(client, container, instance_id).json()
    assert doc["termination_reason"] == reason
    assert doc["state"] == "TERMINATED"
    # Terminated is final: a second DELETE is an illegal transition, and records nothing.
    before = head(container)
    assert assert_problem(client.delete(f"{API}/instances/{instance_id}", headers=ADMIN), 409)["state"] == (
        "TERMINATED")
    assert by_callers(container, before) == []


def test_terminate_a_pending_instance(app: Client) -> None:
    client, container = app
    instance_id = request_instance(client, "service", owner_id="s1")["id"]
    response = client.delete(f"{API}/instances/{instance_id}", headers=AUTH["service"])
    assert response.status_code == 202
    assert read(client, container, instance_id).json()["termination_reason"] == "cancelled"


# -- metrics ----------------------------------------------------------------------------------------
def test_metrics_count_instances_by_state(app: Client) -> None:
    client, container = app
    for _ in range(3):
        request_instance(client, "user")
    gone = request_instance(client, "user")["id"]
    client.delete(f"{API}/instances/{gone}", headers=AUTH["user"])
    container.wait_for_position(head(container), 5)
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in client.get("/metrics").text.splitlines()
             if line.startswith("lrm_instances{")}
    assert lines['lrm_instances{state="PENDING"}'] == 3
    assert lines['lrm_instances{state="TERMINATED"}'] == 1
    assert lines['lrm_instances{state="RUNNING"}'] == 0


def test_the_openapi_documents_the_problems(app: Client) -> None:
    client, _ = app
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/instances"]["post"]
    assert {"200", "201", "400", "401", "403", "409", "422"} <= set(post["responses"])
    assert "application/problem+json" in post["responses"]["409"]["content"]
    headers = [p["name"] for p in post["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    json.dumps(spec)  # serialisable


def test_the_service_refuses_roles_too(shared: Client) -> None:
    """The routes check roles first; the service is the backstop for any other caller."""
    from domain.context import CommandContext
    from processors.commands.instances import Caller, Forbidden, InstanceRequest

    _, container = shared
    ctx = CommandContext(at=NOW, actor="grader:grader")
    with pytest.raises(Forbidden):
        container.instance_service.request(InstanceRequest("ccna-basic-routing"), Caller("grader", "grader"), ctx)
    with pytest.raises(Forbidden):
        container.instance_service.start("LabletInstance-x", Caller("user", "alice"), ctx)
