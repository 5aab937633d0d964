"""Quotas: per owner, per group (course) and per service; 409 with what remains; they hold
when two writers race for the last slot of one owner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.errors import Conflict
from domain.quota import QuotaExceeded
from processors.commands.instances import Caller, InstanceRequest, InstanceService
from tests.api.test_instances_support import (
    ADMIN,
    API,
    AUTH,
    NOW,
    assert_problem,
    by_callers,
    caught_up,
    head,
    instance_client,
    publish,
    request_instance,
    running_worker,
    system_ctx,
)
from tests.api.test_templates_support import control_client

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        yield pair


def set_quota(client: TestClient, kind: str, name: str, expect: int = 202, **body: Any) -> dict[str, Any]:
    response = client.put(f"{API}/quotas/{kind}/{name}", json=body, headers=ADMIN)
    assert response.status_code == expect, response.text
    return response.json()


def at(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


def test_an_owner_over_its_concurrent_quota_gets_409_with_what_remains(app: Client) -> None:
    client, container = app
    set_quota(client, "owners", "alice", max_concurrent_labs=1)
    first = request_instance(client, "user", timeslot_start=at(1), duration_minutes=60)
    before = head(container)
    refused = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "timeslot_start": at(1.5),
                                                    "duration_minutes": 60}, headers=AUTH["user"])
    assert_problem(refused, 409)
    body = refused.json()
    assert body["title"] == "Quota exceeded" and body["quota"] == "owner:alice"
    assert body["remaining"] == {"concurrent_labs": 0} and body["limits"]["max_concurrent_labs"] == 1
    assert by_callers(container, before) == []
    request_instance(client, "user", timeslot_start=at(3), duration_minutes=60)  # after the first: fits
    # a cancelled lab stops counting
    assert client.delete(f"{API}/instances/{first['id']}", headers=AUTH["user"]).status_code == 202
    request_instance(client, "user", timeslot_start=at(1.5), duration_minutes=60)
    # another owner has no quota
    request_instance(client, "admin", owner_id="carol", timeslot_start=at(1), duration_minutes=60)
    request_instance(client, "admin", owner_id="carol", timeslot_start=at(1), duration_minutes=60)


def test_lab_hours_per_day_and_the_owners_view(app: Client) -> None:
    client, container = app
    set_quota(client, "owners", "alice", max_lab_hours_per_day=1.5)
    request_instance(client, "user", timeslot_start=at(1), duration_minutes=60)
    refused = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "timeslot_start": at(3),
                                                    "duration_minutes": 60}, headers=AUTH["user"])
    assert_problem(refused, 409)
    assert refused.json()["remaining"]["lab_hours"] == 0.5
    request_instance(client, "user", timeslot_start=at(3), duration_minutes=30)
    mine = client.get(f"{API}/quotas/me", headers=AUTH["user"]).json()["items"]
    assert mine[0]["quota"] == "owner:alice" and mine[0]["lab_hours_today"] == 1.5
    assert mine[0]["remaining"] == {"lab_hours_today": 0.0}
    assert client.get(f"{API}/quotas/me", headers={"Authorization": "Bearer usr2"}).json()["items"] == []


def test_the_view_of_a_quota_set_on_a_busy_owner_counts_what_it_already_has(app: Client) -> None:
    client, container = app
    request_instance(client, "user", timeslot_start=at(1), duration_minutes=60)  # before any quota
    set_quota(client, "owners", "alice", max_concurrent_labs=1, max_lab_hours_per_day=1.5)
    mine = client.get(f"{API}/quotas/me", headers=AUTH["user"]).json()["items"]
    assert mine[0]["lab_hours_today"] == 1.0 and mine[0]["remaining"]["lab_hours_today"] == 0.5
    one = client.get(f"{API}/quotas/owners/alice", headers=ADMIN).json()
    assert one["lab_hours_today"] == 1.0
    refused = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "timeslot_start": at(3),
                                                    "duration_minutes": 60}, headers=AUTH["user"])
    assert_problem(refused, 409)  # what the view said remains is what the check finds
    assert refused.json()["remaining"]["lab_hours"] == 0.5


def test_a_group_quota_counts_every_member(app: Client) -> None:
    client, container = app
    set_quota(client, "groups", "ccna-autumn", max_concurrent_labs=1, members=["alice", "bob"])
    request_instance(client, "user", timeslot_start=at(1), duration_minutes=60)
    refused = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "timeslot_start": at(1),
                                                    "duration_minutes": 60}, headers={"Authorization": "Bearer usr2"})
    assert_problem(refused, 409)
    assert refused.json()["quota"] == "group:ccna-autumn"


def test_service_bookings_have_their_own_quota(app: Client) -> None:
    client, container = app
    set_quota(client, "services", "exam", max_concurrent_labs=2)
    set_quota(client, "owners", "alice", max_concurrent_labs=0)  # does not apply to the service's bookings
    for owner in ("alice", "s2"):
        request_instance(client, "service", owner_id=owner, timeslot_start=at(1), duration_minutes=60)
    refused = client.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "owner_id": "s3",
                                                    "timeslot_start": at(1), "duration_minutes": 60},
                          headers=AUTH["service"])
    assert_problem(refused, 409)
    assert refused.json()["quota"] == "service:exam"
    assert client.get(f"{API}/quotas/me", headers=AUTH["service"]).json()["items"][0]["quota"] == "service:exam"


def test_a_class_over_an_owners_quota_books_no_seat(app: Client) -> None:
    client, container = app
    running_worker(client, container)
    set_quota(client, "owners", "alice", max_concurrent_labs=1)
    request_instance(client, "user", duration_minutes=60)
    before = head(container)
    response = client.post(f"{API}/classes", json={"definition": "ccna-basic-routing", "duration_minutes": 60,
                                                   "owners": ["bob", "alice", "dave"]}, headers=AUTH["instructor"])
    assert_problem(response, 409)
    assert response.json()["quota"] == "owner:alice"
    assert by_callers(container, before) == []


def test_an_extension_over_quota_is_refused(app: Client) -> None:
    client, container = app
    set_quota(client, "owners", "alice", max_lab_hours_per_day=1.0)
    instance_id = request_instance(client, "user", timeslot_start=at(1), duration_minutes=60)["id"]
    response = client.post(f"{API}/instances/{instance_id}/extend", json={"minutes": 15}, headers=AUTH["user"])
    assert_problem(response, 409)
    assert response.json()["title"] == "Quota exceeded"


def test_admins_set_and_remove_quotas_and_bad_limits_are_422(app: Client) -> None:
    client, container = app
    assert set_quota(client, "owners", "alice", max_concurrent_labs=2)["changed"] is True
    assert set_quota(client, "owners", "alice", expect=200, max_concurrent_labs=2)["changed"] is False
    assert_problem(client.put(f"{API}/quotas/owners/alice", json={"max_concurrent_labs": -1}, headers=ADMIN), 422)
    assert_problem(client.put(f"{API}/quotas/owners/alice", json={"max_concurrent_labs": "2"}, headers=ADMIN), 422)
    assert_problem(client.put(f"{API}/quotas/owners/alice", json={"members": ["x"]}, headers=ADMIN), 422)
    assert_problem(client.put(f"{API}/quotas/planets/mars", json={}, headers=ADMIN), 422)
    assert_problem(client.put(f"{API}/quotas/owners/alice", json={}, headers=AUTH["instructor"]), 403)
    listed = client.get(f"{API}/quotas", headers=AUTH["instructor"]).json()["items"]
    assert [q["quota"] for q in listed] == ["owner:alice"]
    assert client.delete(f"{API}/quotas/owners/alice", headers=ADMIN).status_code == 202
    assert_problem(client.delete(f"{API}/quotas/owners/alice", headers=ADMIN), 404)


def test_quotas_are_seeded_from_the_config_file_until_an_admin_sets_any(tmp_path: Path) -> None:
    seed = tmp_path / "quotas.yaml"
    seed.write_text("quotas:\n  - {kind: owner, name: alice, max_concurrent_labs: 1}\n")
    with control_client(tmp_path, quotas_file=seed) as (client, container):
        publish(client)
        request_instance(client, "user", timeslot_start=at(1), duration_minutes=60)
        assert_problem(client.post(f"{API}/instances", json={"definition": "ccna-basic-routing",
                                                             "timeslot_start": at(1), "duration_minutes": 60},
                                   headers=AUTH["user"]), 409)
        assert container.seed_quotas() == []  # the policy exists: the file never overwrites it


class RacingStore:
    """Both writers read, then both save at once: the first save of each thread waits for the other."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.barrier = threading.Barrier(2, timeout=10)
        self.waited: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save(self, *aggregates: Any) -> int:
        me = threading.get_ident()
        if me not in self.waited:
            self.waited.add(me)
            self.barrier.wait()
        return self.store.save(*aggregates)


@pytest.mark.parametrize("limit", ["max_concurrent_labs", "max_lab_hours_per_day"])
def test_quotas_hold_when_two_bookings_of_one_owner_race(app: Client, limit: str) -> None:
    client, container = app
    set_quota(client, "owners", "alice", **{limit: 1})
    racing = RacingStore(container.store)
    service = InstanceService(racing, container.quota_service)  # type: ignore[arg-type]
    container.quota_service.store = racing
    outcomes: list[object] = []

    def book() -> None:
        try:
            outcomes.append(service.request(
                InstanceRequest(definition="ccna-basic-routing", timeslot_start=NOW + timedelta(hours=1),
                                duration_minutes=60),
                Caller("user", "alice"), system_ctx(container, "user:alice")))
        except Conflict as error:
            outcomes.append(error)

    threads = [threading.Thread(target=book) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    booked = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(booked) == 1 and len(refused) == 1, outcomes
    listed = client.get(f"{API}/instances", params={"owner_id": "alice", **caught_up(container)},
                        headers=ADMIN).json()["items"]
    assert len(listed) == 1
