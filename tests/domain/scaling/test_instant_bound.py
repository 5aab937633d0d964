"""The live fleet-cost bound: below the simulator's exact one, so below any placement's hours."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import Reservation
from domain.resources import Resources
from domain.scaling.instant_bound import instant_lower_bound, workers_needed
from processors.simulation.capacity import LabKind, LabSpan, WorkerKind
from processors.simulation.lower_bound import lower_bound
from tests.domain.scaling.builders import at, enterprise, personal

TEMPLATES = [personal(), enterprise(startup=15)]


def hold(instance_id: str, start: float, end: float, cpu: float = 4, mem: float = 8, nodes: int = 2) -> Reservation:
    return Reservation(instance_id, Resources(cpu, mem, 10), nodes, {}, at(start), at(end))


def test_nothing_held_needs_nothing() -> None:
    assert instant_lower_bound(TEMPLATES, []).hours == 0
    assert instant_lower_bound([], [hold("a", 0, 60)]).hours == 0


def test_each_instant_counts_the_largest_template_and_the_peak_boots_once_at_the_shortest_boot() -> None:
    # 30 labs of 4 cpu and 2 nodes for an hour: 120 cpu of the largest 96 per worker, 2 workers
    # (nodes alone would fit the largest node limit, 500, on one)
    labs = [hold(f"l{i}", 0, 60) for i in range(30)]
    bound = instant_lower_bound(TEMPLATES, labs)
    assert (bound.capacity_hours, bound.peak_workers) == (2.0, 2)
    assert bound.boot_hours == 2 * 15 / 60
    # on the personal template alone: 60 nodes of 20 per worker
    assert instant_lower_bound([personal()], labs).peak_workers == 3


def test_labs_over_half_of_a_dimension_never_share_a_worker() -> None:
    assert workers_needed([(60.0, 1.0, 1.0, 1.0)] * 3, (96.0, 384.0, 1000.0, 500.0)) == 3
    assert workers_needed([(40.0, 1.0, 1.0, 1.0)] * 3, (96.0, 384.0, 1000.0, 500.0)) == 2


def test_a_hold_that_ends_where_another_begins_does_not_overlap_it() -> None:
    bound = instant_lower_bound([personal()], [hold("a", 0, 60, nodes=20), hold("a", 60, 120, nodes=20)])
    assert (bound.capacity_hours, bound.peak_workers) == (2.0, 1)


labs = st.lists(
    st.tuples(st.integers(0, 600), st.integers(15, 240), st.sampled_from([4, 16, 30]),
              st.sampled_from([8, 100]), st.sampled_from([2, 12])),
    min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(labs)
def test_the_live_bound_is_never_above_the_exact_per_instant_bound(drawn: list[tuple[int, int, int, int, int]]) -> None:
    holds = [hold(f"l{i}", start, start + length, cpu, mem, nodes)
             for i, (start, length, cpu, mem, nodes) in enumerate(drawn)]
    live = instant_lower_bound(TEMPLATES, holds)
    workers = [WorkerKind(t.name, (t.capacity.cpu_cores, t.capacity.memory_gb, t.capacity.storage_gb,
                                   float(t.max_nodes), 10_000.0), t.license_type, t.nested_virt,
                          t.startup_minutes / 60, t.restart_minutes / 60, t.hourly_cost) for t in TEMPLATES]
    spans = [LabSpan(h.instance_id, LabKind.of(h.resources.to_dict(), h.nodes, 0, {}), h.hold_start, h.hold_end)
             for h in holds]
    exact = lower_bound(spans, workers, time_limit=1.0)
    assert live.capacity_hours <= exact.capacity_hours + 1e-9
    assert live.peak_workers <= exact.peak_workers
    assert live.hours <= exact.hours + 1e-9
