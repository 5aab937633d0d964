"""The simulator runs the real processors on a virtual clock: outcomes and determinism."""

from __future__ import annotations

from typing import Any

import pytest

from api.simulate import build_simulation
from domain.instance import InstanceState, LabletInstance
from processors.simulation import Simulation, Workload


def _run(workload: Workload, policy: str = "default") -> tuple[Simulation, dict[str, Any]]:
    simulation = build_simulation(workload, policy=policy)
    result = simulation.run()
    return simulation, result.kpis


def _log(simulation: Simulation) -> list[tuple[str, int, str, str]]:
    import json

    return [(s.stream_id, s.version, s.topic, json.dumps(s.event.payload(), sort_keys=True, default=str))
            for s in simulation.store.read_all(limit=1_000_000)]


def _states(simulation: Simulation) -> dict[str, InstanceState]:
    return {s.stream_id: simulation.store.get(s.stream_id).state
            for s in simulation.store.read_all(limit=1_000_000)
            if isinstance(s.event, LabletInstance.InstanceRequested)}


def test_same_seed_same_log(small: Workload) -> None:
    first, _ = _run(small)
    second, _ = _run(small)
    assert _log(first) == _log(second)
    assert len(_log(first)) > 100


def test_another_seed_changes_the_run(small: Workload) -> None:
    first, _ = _run(small)
    other, _ = _run(small.with_seed(99))
    assert _log(first) != _log(other)


def test_every_booking_is_served_and_finished(small: Workload) -> None:
    simulation, kpis = _run(small)
    states = _states(simulation)
    assert len(states) == len(small.bookings)
    assert set(states.values()) == {InstanceState.TERMINATED}
    assert kpis["never_ready"] == 0
    assert kpis["booked"] == len(small.bookings) - 1 and kpis["asap"] == 1
    assert kpis["no_shows"] == 1
    assert kpis["on_time_ratio"] == 1.0
    assert kpis["worker_hours"] >= kpis["lower_bound_hours"] > 0
    assert kpis["scale_actions"]["LaunchWorker"] >= 1


def test_users_and_grader_are_played(small: Workload) -> None:
    simulation, _ = _run(small)
    by_booking = {b.id: b for b in small.bookings}
    names: dict[str, list[str]] = {}
    for stored in simulation.store.read_all(limit=1_000_000):
        names.setdefault(stored.stream_id, []).append(stored.event_name)
    owners = {s.stream_id: s.event.owner_id for s in simulation.store.read_all(limit=1_000_000)
              if isinstance(s.event, LabletInstance.InstanceRequested)}
    events = {owner: names[iid] for iid, owner in owners.items()}
    assert "UserLoggedIn" not in events[by_booking["noshow"].owner]
    assert "StopRequested" in events[by_booking["noshow"].owner]
    quitter = events[by_booking["quitter"].owner]
    assert quitter.index("CollectionStarted") < quitter.index("GradingCompleted")
    assert "UserLoggedIn" in events[by_booking["early"].owner]


def test_sqlite_backend_gives_the_same_log_as_memory(small: Workload, tmp_path: Any) -> None:
    from api.simulate import open_store

    in_memory, _ = _run(small)
    store = open_store(f"sqlite:{tmp_path / 'events.sqlite3'}")
    try:
        on_disk = build_simulation(small, store=store)
        on_disk.run()
        assert _log(on_disk) == _log(in_memory)
    finally:
        store.close()


def test_a_booking_nothing_can_host_is_reported_never_ready(small: Workload) -> None:
    from dataclasses import replace

    from processors.simulation import Booking, DefinitionProfile

    huge = DefinitionProfile(name="huge", node_count=600, license_affinity=("ENTERPRISE",))
    booking = Booking(id="impossible", at=small.start, definition="huge", minutes=30,
                      start=small.start + (small.bookings[0].start - small.start), owner="eve")
    workload = replace(small, definitions=(*small.definitions, huge), bookings=(booking, *small.bookings))
    _, kpis = _run(workload)
    assert kpis["never_ready"] == 1
    assert kpis["on_time"] == kpis["booked"] - 1


@pytest.mark.postgres
def test_postgres_backend_gives_the_same_log_as_memory(small: Workload, postgres_url: str,
                                                       postgres_schema: str) -> None:
    from api.simulate import open_store

    in_memory, _ = _run(small)
    store = open_store(postgres_url, schema=postgres_schema)
    try:
        on_postgres = build_simulation(small, store=store)
        on_postgres.run()
        assert _log(on_postgres) == _log(in_memory)
    finally:
        store.close()
