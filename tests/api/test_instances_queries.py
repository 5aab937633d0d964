"""``GET /instances/counts`` and the ``reservation_id`` filter of ``GET /instances``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.instance import InstanceState
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from projections.readmodel import Table
from projections.readmodels.instances import INSTANCES, InstancesProjection
from tests.api.test_instances_support import (
    ADMIN,
    API,
    AUTH,
    NOW,
    assert_problem,
    caught_up,
    head,
    instance_client,
    place,
    request_instance,
    running_worker,
)

Client = tuple[TestClient, Container]
BOB = {"Authorization": "Bearer usr2"}  # a second user (subject bob)
ALL_STATES = {state.value for state in InstanceState}


@pytest.fixture(scope="module")
def booked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Container, dict[str, str]]]:
    """One app, read only by the tests below: six instances of four callers in three states.

    alice (user): a1 SCHEDULED (exam-7), a2 PENDING (exam-8), a3 TERMINATED (no reservation)
    service exam: s1 PENDING for student-1 (exam-7)
    admin: b1 PENDING for bob (exam-7)
    bob (user): b2 PENDING (exam-9)
    """
    with instance_client(tmp_path_factory.mktemp("queries")) as (client, container):
        day = (NOW + timedelta(days=1)).isoformat()
        ids = {
            "a1": request_instance(client, "user", reservation_id="exam-7")["id"],
            "a2": request_instance(client, "user", reservation_id="exam-8", timeslot_start=day)["id"],
            "a3": request_instance(client, "user")["id"],
            "s1": request_instance(client, "service", owner_id="student-1", reservation_id="exam-7",
                                   timeslot_start=day)["id"],
            "b1": request_instance(client, "admin", owner_id="bob", reservation_id="exam-7")["id"],
        }
        response = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing",
                                                          "reservation_id": "exam-9"}, headers=BOB)
        assert response.status_code == 201, response.text
        ids["b2"] = response.json()["id"]
        place(container, ids["a1"], running_worker(client, container))
        assert client.delete(f"{API}/instances/{ids['a3']}", headers=AUTH["user"]).status_code == 202
        yield client, container, ids


def counts(client: TestClient, container: Container, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{API}/instances/counts", params=caught_up(container), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def listed(client: TestClient, container: Container, headers: dict[str, str] = ADMIN, **params: Any) -> set[str]:
    response = client.get(f"{API}/instances", params={**caught_up(container), "limit": 500, **params},
                          headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return {item["id"] for item in body["items"]}


# -- counts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (ADMIN, {"PENDING": 4, "SCHEDULED": 1, "TERMINATED": 1}),
        (AUTH["instructor"], {"PENDING": 4, "SCHEDULED": 1, "TERMINATED": 1}),
        (AUTH["user"], {"PENDING": 1, "SCHEDULED": 1, "TERMINATED": 1}),  # alice: what she owns
        (BOB, {"PENDING": 2}),  # bob owns b1 (booked for him by an admin) and b2
        (AUTH["service"], {"PENDING": 1}),  # exam: what it requested, whoever owns it
    ],
    ids=["admin", "instructor", "alice", "bob", "service"],
)
def test_counts_by_state_cover_what_the_caller_may_see(
    booked: tuple[TestClient, Container, dict[str, str]], headers: dict[str, str], expected: dict[str, int]
) -> None:
    client, container, _ = booked
    body = counts(client, container, headers)
    assert set(body["by_state"]) == ALL_STATES  # zeros included
    assert {state: n for state, n in body["by_state"].items() if n} == expected
    assert body["total"] == sum(expected.values())


@pytest.mark.parametrize("role", ["admin", "user", "service"])
def test_counts_agree_with_the_list(booked: tuple[TestClient, Container, dict[str, str]], role: str) -> None:
    client, container, _ = booked
    body = counts(client, container, AUTH[role])
    for state in InstanceState:
        assert body["by_state"][state.value] == len(listed(client, container, AUTH[role], state=state.value))
    assert body["total"] == len(listed(client, container, AUTH[role]))


@pytest.mark.parametrize(("headers", "status"), [(AUTH["grader"], 403), ({}, 401),
                                                 ({"Authorization": "Bearer nope"}, 401)])
def test_counts_refuse_who_may_not_read_instances(
    booked: tuple[TestClient, Container, dict[str, str]], headers: dict[str, str], status: int
) -> None:
    client, _, _ = booked
    assert_problem(client.get(f"{API}/instances/counts", headers=headers), status)


def test_counts_take_min_position(booked: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, container, _ = booked
    beyond = head(container) + 1_000
    assert_problem(client.get(f"{API}/instances/counts", params={"min_position": beyond}, headers=ADMIN), 422,
                   "min_position")
    assert_problem(client.get(f"{API}/instances/counts", params={"min_position": -1}, headers=ADMIN), 422,
                   "min_position")


def test_a_new_request_is_counted_once_the_read_model_has_it(tmp_path: Path) -> None:
    with instance_client(tmp_path) as (client, container):
        empty = counts(client, container, ADMIN)
        assert empty == {"by_state": dict.fromkeys(ALL_STATES, 0), "total": 0}
        accepted = request_instance(client, "user")
        response = client.get(f"{API}/instances/counts", params={"min_position": accepted["position"]},
                              headers=AUTH["user"])
        assert response.status_code == 200
        assert response.json()["by_state"]["PENDING"] == 1 and response.json()["total"] == 1


def test_counts_is_not_taken_for_an_instance_id(booked: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, container, ids = booked
    # The literal path is its own route; real ids still resolve to their instance.
    assert "by_state" in counts(client, container, ADMIN)
    one = client.get(f"{API}/instances/{ids['a1']}", params=caught_up(container), headers=ADMIN)
    assert one.status_code == 200 and one.json()["id"] == ids["a1"]


# -- reservation_id filter ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "params", "expected"),
    [
        ("admin", {"reservation_id": "exam-7"}, {"a1", "s1", "b1"}),
        ("instructor", {"reservation_id": "exam-7"}, {"a1", "s1", "b1"}),
        ("user", {"reservation_id": "exam-7"}, {"a1"}),  # alice: only her own of that booking
        ("service", {"reservation_id": "exam-7"}, {"s1"}),
        ("admin", {"reservation_id": "exam-8"}, {"a2"}),
        ("admin", {"reservation_id": "exam-"}, set()),  # exact match, not a prefix
        ("admin", {"reservation_id": "EXAM-7"}, set()),  # the booking system's reference, as is
        ("admin", {"reservation_id": "none-such"}, set()),
        ("admin", {"reservation_id": "exam-7", "state": "PENDING"}, {"s1", "b1"}),
        ("admin", {"reservation_id": "exam-7", "owner_id": "bob"}, {"b1"}),
        ("admin", {"reservation_id": "exam-7", "definition": "ccna-basic-routing"}, {"a1", "s1", "b1"}),
        # with a time range (the scan path): tomorrow's bookings only
        ("admin", {"reservation_id": "exam-7", "from": (NOW + timedelta(hours=20)).isoformat()}, {"s1"}),
    ],
)
def test_the_list_filters_by_reservation_id(
    booked: tuple[TestClient, Container, dict[str, str]], role: str, params: dict[str, Any], expected: set[str]
) -> None:
    client, container, ids = booked
    assert listed(client, container, AUTH[role], **params) == {ids[name] for name in expected}


def test_reservation_pages_follow_cursors(booked: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, container, ids = booked
    seen: list[str] = []
    params: dict[str, Any] = {**caught_up(container), "reservation_id": "exam-7", "limit": 1}
    for _ in range(5):
        body = client.get(f"{API}/instances", params=params, headers=ADMIN).json()
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert sorted(seen) == sorted(ids[name] for name in ("a1", "s1", "b1"))


def test_an_overlong_reservation_id_is_422(booked: tuple[TestClient, Container, dict[str, str]]) -> None:
    client, _, _ = booked
    assert_problem(client.get(f"{API}/instances", params={"reservation_id": "x" * 201}, headers=ADMIN), 422,
                   "reservation_id")


def test_a_read_model_of_the_previous_version_is_rebuilt_with_the_new_index(tmp_path: Path) -> None:
    """Upgrading: the instances tables of version 2 have no reservation_id column; starting the
    new version rebuilds them in a shadow copy (the old ones gain the column, empty) and switches."""
    with instance_client(tmp_path) as (client, container):
        booked = request_instance(client, "user", reservation_id="exam-7")["id"]
        request_instance(client, "user", reservation_id="exam-8")
        position = head(container)
        readmodel_path = container.settings.readmodel_sqlite_path()
    old = SqliteReadModelStore(readmodel_path)
    try:
        old.drop_tables([INSTANCES])
        old.ensure_tables([Table(INSTANCES.name, {k: v for k, v in INSTANCES.indexes.items() if k != "reservation_id"})])
        with old.transaction() as tx:
            tx.save_checkpoint(InstancesProjection.name, position, 2)
    finally:
        old.close()
    with instance_client(tmp_path) as (client, container):
        # The old model serves (the new filter finds nothing in it) while the new one rebuilds.
        assert container.projection_runner.wait_rebuilt(timeout=30)
        assert listed(client, container, reservation_id="exam-7") == {booked}
        assert container.read_models.checkpoint(InstancesProjection.name).version == InstancesProjection.version
