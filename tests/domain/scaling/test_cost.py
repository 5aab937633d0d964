"""Worker-hours, cost, idle share and the lower bound."""

from __future__ import annotations

import pytest

from domain.ledger import Reservation
from domain.resources import Resources
from domain.scaling import WorkerState
from domain.scaling.cost import busy_spans, fleet_cost, lower_bound, lower_bounds, state_intervals
from tests.domain.scaling.builders import at, personal

TPL = personal(cost=4.0, startup=20)


def res(instance_id: str, start: float, end: float, cpu: float = 4, mem: float = 8, nodes: int = 2) -> Reservation:
    return Reservation(instance_id, Resources(cpu, mem, 10), nodes, {}, at(start), at(end))


def test_state_intervals_close_each_state_at_the_next_change() -> None:
    intervals = state_intervals(
        "w1", TPL.name,
        [(at(20), "PROVISIONING"), (at(0), "PENDING"), (at(40), "RUNNING"), (at(160), "STOPPED")],
        until=at(300),
    )
    assert [(i.state, i.start, i.end) for i in intervals] == [
        (WorkerState.PENDING, at(0), at(20)),
        (WorkerState.PROVISIONING, at(20), at(40)),
        (WorkerState.RUNNING, at(40), at(160)),
        (WorkerState.STOPPED, at(160), at(300)),
    ]


@pytest.mark.parametrize(
    ("transitions", "hours"),
    [
        ([(0, "PENDING"), (20, "PROVISIONING"), (40, "RUNNING"), (160, "STOPPED")], 140 / 60),
        ([(0, "RUNNING"), (60, "DRAINING"), (120, "STOPPING"), (125, "STOPPED")], 2.0),
        ([(0, "STOPPED"), (60, "TERMINATED")], 0.0),
        ([(0, "PROVISIONING"), (20, "FAILED")], 20 / 60),
    ],
)
def test_billed_states_are_provisioning_running_draining(transitions, hours) -> None:
    intervals = state_intervals("w1", TPL.name, [(at(m), s) for m, s in transitions], until=at(300))
    report = fleet_cost(intervals, {TPL.name: 4.0})
    assert report.worker_hours == pytest.approx(hours)
    assert report.cost == pytest.approx(hours * 4.0)


def test_idle_share_is_billed_time_without_a_hold() -> None:
    intervals = state_intervals("w1", TPL.name, [(at(0), "RUNNING"), (at(120), "STOPPED")], until=at(200))
    holds = [res("a", 30, 90), res("b", 60, 100)]  # busy 30..100 → 70 of 120 min
    report = fleet_cost(intervals, {TPL.name: 4.0}, {"w1": busy_spans(holds)})
    assert report.per_template[TPL.name].idle_hours == pytest.approx(50 / 60)
    assert report.idle_share == pytest.approx(50 / 120)
    assert report.to_dict()["per_template"][TPL.name]["workers"] == 1


def test_lower_bound_by_dominant_resource_plus_boot() -> None:
    # 200 labs x 2 nodes for 2 h on 20-node workers: 800 node-hours / 20 = 40 worker-hours,
    # cpu only 1600 core-hours / 48 = 33.3; 20 workers must boot once: 20 x 20 min.
    holds = [res(f"i{k}", 0, 120) for k in range(200)]
    bound = lower_bound(TPL, holds)
    assert bound.reserved_hours["nodes"] == pytest.approx(800)
    assert bound.capacity_bound_hours == pytest.approx(40)
    assert bound.workers_at_peak == 20
    assert bound.boot_hours == pytest.approx(20 * 20 / 60)
    assert bound.worker_hours == pytest.approx(40 + 20 / 3)


def test_lower_bound_counts_only_the_peak_for_boots() -> None:
    holds = [res("a", 0, 60, cpu=40), res("b", 120, 180, cpu=40)]  # never together: one worker
    bound = lower_bound(TPL, holds)
    assert bound.workers_at_peak == 1
    assert bound.capacity_bound_hours == pytest.approx(80 / 48)


def test_lower_bound_of_nothing_is_zero_and_unknown_templates_are_skipped() -> None:
    assert lower_bound(TPL, []).worker_hours == 0
    bounds = lower_bounds([TPL], {TPL.name: [res("a", 0, 60)], "gone": [res("b", 0, 60)]})
    assert set(bounds) == {TPL.name}
    assert bounds[TPL.name].to_dict()["workers_at_peak"] == 1
