"""``/capacity`` and ``/reservations``: declared, reserved (now, peak over a window) and free."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.container import Container
from projections.readmodels.workers import template_capacity, worker_capacity
from tests.api.test_templates_support import (
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
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    with control_client(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Container]]:
    """One app for the tests that only read or are refused (cheaper than one app per test)."""
    with control_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_capacity_now_and_over_a_window(app: tuple[TestClient, Container]) -> None:
    client, container = app
    first = running_worker(client, container)
    second = running_worker(client, container)
    # first: 4 cores now until +1h, 8 cores from +2h to +4h; second: 6 cores from +3h to +5h.
    reserve(container, first, "Instance-a", NOW - timedelta(hours=1), 2, cpu=4, nodes=2)
    reserve(container, first, "Instance-b", NOW + timedelta(hours=2), 2, cpu=8, nodes=4, ports=("s1", "s2"))
    reserve(container, second, "Instance-c", NOW + timedelta(hours=3), 2, cpu=6, nodes=3)
    response = client.get(f"{API}/capacity", headers=AUTH["instructor"], params=caught_up(container))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == iso(NOW).replace("+00:00", "Z")
    by_worker = {w["worker_id"]: w for w in body["workers"]}
    assert by_worker[first]["reserved_now"]["cpu_cores"] == 4
    assert by_worker[first]["reserved_peak"]["cpu_cores"] == 8  # a and b never overlap
    assert by_worker[first]["free"]["cpu_cores"] == 40
    # Held in the window: a has 2000 until +1h, b then gets the lowest free ports again: 2000, 2001.
    assert by_worker[first]["reserved_peak"]["ports"] == 2
    assert by_worker[first]["free"]["ports"] == 998
    assert by_worker[second]["reserved_now"]["cpu_cores"] == 0
    [template] = body["templates"]
    assert template["template_name"] == "personal-standard"
    assert template["workers"] == 2 and template["states"] == {"RUNNING": 2}
    assert template["declared"]["cpu_cores"] == 96 and template["declared"]["nodes"] == 40
    assert template["reserved_now"]["cpu_cores"] == 4
    # b and c overlap from +3h to +4h: 8 + 6 cores at once.
    assert template["reserved_peak"]["cpu_cores"] == 14
    assert template["reserved_peak"]["nodes"] == 7
    assert template["free"]["cpu_cores"] == 82

    # A window that ends before b starts sees a only.
    window = {"from": iso(NOW + timedelta(minutes=30)), "to": iso(NOW + timedelta(hours=1, minutes=30))}
    early = client.get(f"{API}/capacity", headers=AUTH["instructor"], params=window).json()
    assert early["templates"][0]["reserved_peak"]["cpu_cores"] == 4
    late = client.get(f"{API}/capacity", headers=ADMIN, params={
        "from": iso(NOW + timedelta(minutes=30)), "to": iso(NOW + timedelta(hours=3, minutes=30))}).json()
    assert late["templates"][0]["reserved_peak"]["cpu_cores"] == 14

    only = client.get(f"{API}/capacity", headers=ADMIN, params={"worker_id": second}).json()
    assert [w["worker_id"] for w in only["workers"]] == [second]
    none = client.get(f"{API}/capacity", headers=ADMIN, params={"template": "enterprise-large"}).json()
    assert none["templates"] == [] and none["workers"] == []


def test_reservations_by_window_worker_and_instance(app: tuple[TestClient, Container]) -> None:
    client, container = app
    first = running_worker(client, container)
    second = running_worker(client, container)
    reserve(container, first, "Instance-a", NOW - timedelta(hours=1), 2)
    reserve(container, second, "Instance-b", NOW + timedelta(hours=1), 1)
    reserve(container, first, "Instance-c", NOW + timedelta(hours=30), 1)
    params = caught_up(container)

    def listed(**extra: object) -> list[str]:
        response = client.get(f"{API}/reservations", headers=AUTH["instructor"], params={**params, **extra})
        assert response.status_code == 200, response.text
        return [r["instance_id"] for r in response.json()["items"]]

    assert listed() == ["Instance-a", "Instance-b"]  # default window: the next 24 h
    assert listed(to=iso(NOW + timedelta(days=2))) == ["Instance-a", "Instance-b", "Instance-c"]
    assert listed(worker_id=first, to=iso(NOW + timedelta(days=2))) == ["Instance-a", "Instance-c"]
    assert listed(instance_id="Instance-b") == ["Instance-b"]
    assert listed(**{"from": iso(NOW + timedelta(hours=2))}) == []
    row = client.get(f"{API}/reservations", headers=ADMIN, params={"instance_id": "Instance-a"}).json()["items"][0]
    assert row["worker_id"] == first and row["active"] is True and row["ports"] == {"serial_1": 2000}

    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(f"{API}/reservations", headers=ADMIN, params={
            "to": iso(NOW + timedelta(days=2)), "limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["instance_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Instance-a", "Instance-b", "Instance-c"]


@pytest.mark.parametrize(
    "path, params, status, field",
    [
        ("/capacity", {"from": "2026-11-28T10:00:00Z", "to": "2026-11-28T09:00:00Z"}, 422, "to"),
        ("/capacity", {"from": "2026-11-28T10:00:00"}, 422, "from"),
        ("/capacity", {"to": "tomorrow"}, 422, "to"),
        ("/reservations", {"cursor": "bm9wZQ"}, 422, "cursor"),
        ("/reservations", {"limit": 501}, 422, "limit"),
        ("/reservations", {"limit": 0}, 422, "limit"),
    ],
)
def test_bad_queries_are_problems(
    shared: tuple[TestClient, Container], path: str, params: dict, status: int, field: str
) -> None:
    client, container = shared
    assert_problem(client.get(f"{API}{path}", headers=ADMIN, params=params), status, field)


@pytest.mark.parametrize("role, status", [("instructor", 200), ("admin", 200), ("user", 403), ("service", 403),
                                          ("grader", 403), (None, 401)])
@pytest.mark.parametrize("path", ["/capacity", "/reservations"])
def test_roles(shared: tuple[TestClient, Container], role: str | None, status: int, path: str) -> None:
    client, container = shared
    before = head(container)
    assert client.get(f"{API}{path}", headers=AUTH.get(role or "", {})).status_code == status
    assert head(container) == before


# -- the arithmetic against a brute-force oracle ------------------------------------------

HOUR = timedelta(hours=1)
holds = st.lists(
    # (start hour, hours held, cores, nodes)
    st.tuples(st.integers(0, 20), st.integers(1, 6), st.integers(1, 8), st.integers(0, 4)),
    max_size=6,
)


def worker_doc(worker_id: str, reservations: list[tuple[int, int, int, int]]) -> dict:
    return {
        "id": worker_id, "template_name": "t", "state": "RUNNING",
        "capacity": {"cpu_cores": 48.0, "memory_gb": 192.0, "storage_gb": 500.0},
        "max_nodes": 20, "port_range": {"start": 2000, "end": 2009},
        "reservations": [
            {"instance_id": f"i{n}", "resources": {"cpu_cores": cpu, "memory_gb": cpu * 2, "storage_gb": 1},
             "nodes": nodes, "ports": {"p": 2000 + n}, "hold_start": iso(NOW + start * HOUR),
             "hold_end": iso(NOW + (start + hours) * HOUR)}
            for n, (start, hours, cpu, nodes) in enumerate(reservations)
        ],
    }


def brute_peak(docs: list[dict], start: datetime, end: datetime) -> tuple[float, int]:
    """Usage is constant between reservation boundaries: look at the window start and every boundary in it."""
    rows = [(datetime.fromisoformat(r["hold_start"]), datetime.fromisoformat(r["hold_end"]), r)
            for doc in docs for r in doc["reservations"]]
    instants = {start} | {s for s, _e, _r in rows if start <= s < end} | {e for _s, e, _r in rows if start <= e < end}
    best_cpu, best_nodes = 0.0, 0
    for t in instants:
        active = [r for s, e, r in rows if s <= t < e]
        best_cpu = max(best_cpu, sum(r["resources"]["cpu_cores"] for r in active))
        best_nodes = max(best_nodes, sum(r["nodes"] for r in active))
    return best_cpu, best_nodes


@settings(max_examples=60, deadline=None)
@given(first=holds, second=holds, window_start=st.integers(0, 20), window_hours=st.integers(1, 10),
       now_hour=st.integers(0, 24))
def test_peaks_match_a_brute_force_sweep(
    first: list, second: list, window_start: int, window_hours: int, now_hour: int
) -> None:
    docs = [worker_doc("Worker-1", first), worker_doc("Worker-2", second)]
    start, end = NOW + window_start * HOUR, NOW + (window_start + window_hours) * HOUR
    now = NOW + now_hour * HOUR
    joint = template_capacity("t", docs, now, start, end)
    assert (joint["reserved_peak"]["cpu_cores"], joint["reserved_peak"]["nodes"]) == brute_peak(docs, start, end)
    now_cpu, now_nodes = brute_peak(docs, now, now + timedelta(microseconds=1))
    assert (joint["reserved_now"]["cpu_cores"], joint["reserved_now"]["nodes"]) == (now_cpu, now_nodes)
    assert joint["free"]["cpu_cores"] == max(0.0, 96 - joint["reserved_peak"]["cpu_cores"])
    for doc in docs:
        alone = worker_capacity(doc, now, start, end)
        assert (alone["reserved_peak"]["cpu_cores"], alone["reserved_peak"]["nodes"]) == brute_peak([doc], start, end)
        held = {p for r in doc["reservations"]
                if datetime.fromisoformat(r["hold_start"]) < end and datetime.fromisoformat(r["hold_end"]) > start
                for p in r["ports"].values()}
        assert alone["free"]["ports"] == 10 - len(held)
