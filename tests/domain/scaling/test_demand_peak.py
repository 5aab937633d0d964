"""The plan summary's queued peak equals the reservation ledger's peak of the same windows."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.ledger import Reservation, ReservationLedger
from domain.resources import ZERO, Resources
from domain.scaling import DemandItem, FleetWorker, ScalingSettings, WorkerState
from domain.scaling.demand import demand_peak, demand_summary
from tests.domain.scaling.builders import T0
from tests.domain.scaling.test_properties import item_st, scenario

UNBOUNDED = Resources(1e15, 1e15, 1e15)


def ledger_peak(items: list[DemandItem]) -> tuple[Resources, int]:
    """What demand_peak computed before: a ledger of the items, asked for its peak."""
    if not items:
        return ZERO, 0
    ledger = ReservationLedger(UNBOUNDED, 10**12, (1, 65535))
    for item in items:
        ledger.add(Reservation(item.instance_id, item.requirements, item.node_count, {}, item.hold_start,
                               item.hold_end), verify=False)
    return ledger.peak(min(i.hold_start for i in items), max(i.hold_end for i in items))


odd_item_st = st.builds(  # fractional sizes too: the sums must be taken in the ledger's order
    lambda item, cpu, mem: DemandItem(item.instance_id, Resources(cpu, mem, 0.3), item.node_count, (),
                                      item.hold_start, item.hold_end, item.timeslot_start),
    item_st("q", queued=True), st.sampled_from([0.1, 0.2, 0.7, 1.0 / 3]), st.sampled_from([0.3, 1.1, 2.2]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(item_st("q", queued=True), odd_item_st), max_size=30, unique_by=lambda i: i.instance_id))
def test_demand_peak_is_the_ledger_peak(items) -> None:
    assert demand_peak(items) == ledger_peak(items)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.integers(-60, 600))
def test_booked_count_is_the_reservations_not_ended(case, minutes) -> None:
    fleet, _templates, demand, config = case
    now = T0 + timedelta(minutes=minutes)
    summary = demand_summary(now, fleet, demand, config)
    assert summary["booked"] == sum(1 for w in fleet for r in w.reservations if r.hold_end > now)


def test_an_empty_fleet_books_nothing() -> None:
    worker = FleetWorker("w", "t", WorkerState.RUNNING, None, T0, (), (), Resources(8, 32, 100), 4, "PERSONAL")
    assert demand_summary(T0, [worker], [], ScalingSettings())["booked"] == 0
