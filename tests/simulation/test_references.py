"""On every shipped workload (scaled down to stay fast): the lower bound is below the offline
schedule and below the worker-hours of every policy, and the hours' breakdown adds up."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.simulate import read_workload, run_simulation

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml"))
SCALE = {"day-10k": 0.002, "day-10k-bootfail": 0.002}  # ~20 bookings each, like the others at 0.03
RUNS = [(name, "default") for name in WORKLOADS] + [("exam-wave", "reactive"), ("exam-wave", "static")]


@pytest.mark.parametrize(("name", "policy"), RUNS)
def test_the_bound_is_below_the_offline_schedule_and_the_policy(name: str, policy: str) -> None:
    workload = read_workload(ROOT / "workloads" / f"{name}.yaml", scale=SCALE.get(name, 0.03))
    kpis = run_simulation(workload, policy=policy).kpis
    bound, offline, hours = kpis["lower_bound_hours"], kpis["offline_hours"], kpis["worker_hours"]
    assert 0 < bound <= offline + 1e-6
    assert bound <= hours + 1e-6
    assert kpis["offline"]["unplaceable"] == 0
    parts = kpis["hours_breakdown"]
    assert abs(parts["boot"] + parts["idle"] + parts["busy"] - hours) < 1e-3
    assert parts["busy"] + 1e-6 >= kpis["lower_bound"]["capacity_hours"]
    assert kpis["ratio_to_offline"] == pytest.approx(hours / offline, abs=1e-3)
