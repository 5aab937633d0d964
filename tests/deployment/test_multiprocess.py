"""The split deployment on PostgreSQL: each role its own OS process, the scheduler leader killed.

api + 2 schedulers + autoscaler + controllers (workers, instances) + dispatcher run as
``lablet serve --role ...`` processes over one database. Labs are requested over HTTP; the
scheduler holding the lease is SIGKILLed midway. The standby must take the lease within
30 s, and the log must show every instance placed exactly once and no worker overbooked at
any version of its ledger.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from adapters.eventstore.factory import open_event_store
from domain.ledger import ReservationLedger
from tests.api.test_templates_support import definition_body
from tests.deployment.conftest import Cluster, Served

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(400)]

API = "/api/v1"
ADMIN = {"Authorization": "Bearer adm"}
ALICE = {"Authorization": "Bearer usr"}
LABS_BEFORE_KILL, LABS_AFTER_KILL = 4, 4


def lease_state(served: Served, role: str) -> str | None:
    try:
        response = httpx.get(f"{served.url}/readyz", timeout=2)
        return response.json().get("leases", {}).get(role)
    except (httpx.HTTPError, ValueError):
        return None


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.25) -> float:
    """Poll until ``predicate()`` is truthy; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def request_labs(http: httpx.Client, count: int, tag: str) -> list[str]:
    ids = []
    for n in range(count):
        response = http.post(f"{API}/instances", json={"definition": "ccna-basic-routing", "duration_minutes": 60},
                             headers={**ALICE, "Idempotency-Key": f"{tag}-{n}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_the_system_survives_losing_its_scheduler_leader(cluster: Cluster) -> None:
    api = cluster.serve("api", "api")
    cluster.wait_healthy(api)  # creates the tables and seeds the templates before the others start
    schedulers = [cluster.serve("scheduler-a", "scheduler"), cluster.serve("scheduler-b", "scheduler")]
    others = [cluster.serve("autoscaler", "autoscaler"), cluster.serve("controllers", "workers,instances"),
              cluster.serve("dispatcher", "dispatcher")]
    for served in [*schedulers, *others]:
        cluster.wait_healthy(served)
    wait_for(lambda: sorted(lease_state(s, "scheduler") or "" for s in schedulers) == ["active", "standby"],
             15, "one active scheduler and one standby")

    store = open_event_store("postgres", postgres_url=cluster.env["LRM_STORE_URL"])
    with httpx.Client(base_url=api.url, timeout=15) as http:
        assert http.post(f"{API}/definitions", json=definition_body(), headers=ADMIN).status_code == 201
        for _ in range(2):
            assert http.post(f"{API}/workers", json={"template": "personal-standard"},
                             headers=ADMIN).status_code == 201
        first = request_labs(http, LABS_BEFORE_KILL, "before")

        def placed(ids: list[str]) -> list[str]:
            return [i for i in ids if store.get(i).worker_id is not None]

        wait_for(lambda: placed(first), 40, "a first placement")
        leader = next(s for s in schedulers if lease_state(s, "scheduler") == "active")
        standby = next(s for s in schedulers if s is not leader)
        leader.kill()
        takeover = wait_for(lambda: lease_state(standby, "scheduler") == "active", 30, "the standby to lead")
        second = request_labs(http, LABS_AFTER_KILL, "after")
        everyone = first + second
        wait_for(lambda: len(placed(everyone)) == len(everyone), 40, "every lab placed")

    for instance_id in everyone:
        scheduled = [e for e in store.read_stream(instance_id) if type(e.event).__name__ == "InstanceScheduled"]
        assert len(scheduled) == 1, f"{instance_id} scheduled {len(scheduled)} times"
    workers = {store.get(i).worker_id for i in everyone}
    for worker_id in workers:
        assert_never_overbooked(store, worker_id)
    assert takeover < 30
    print(f"scheduler takeover after SIGKILL: {takeover:.1f} s")  # docs/operations/deployment.md
    store.close()


def assert_never_overbooked(store: Any, worker_id: str) -> None:
    """Every version of the worker's ledger, re-added with verification, fits its capacity."""
    final = store.get(worker_id)
    for version in range(1, final.version + 1):
        ledger = store.get(worker_id, version=version).ledger
        fresh = ReservationLedger(ledger.capacity, ledger.max_nodes, ledger.port_range)
        for reservation in ledger.reservations():
            fresh.add(reservation)  # raises InsufficientCapacity / Conflict when overbooked
