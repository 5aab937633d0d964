"""The lower bound is a bound (never above an exact optimum, nor above any schedule), and the
offline schedule is a schedule (never overbooked)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.simulation.capacity import DIMENSIONS, LabKind, LabSpan, WorkerKind, add, fits
from processors.simulation.fewest_workers import FewestWorkers
from processors.simulation.lower_bound import active_counts, lower_bound
from processors.simulation.offline import offline_schedule

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# small bins so a handful of labs already needs several workers, in several dimensions
PERSONAL = WorkerKind("personal", (8.0, 16.0, 100.0, 6.0, 10.0), "PERSONAL", True, 20 / 60, 5 / 60, 1.0)
ENTERPRISE = WorkerKind("enterprise", (12.0, 24.0, 100.0, 50.0, 4.0), "ENTERPRISE", True, 20 / 60, 5 / 60, 1.0)
WORKERS = [PERSONAL, ENTERPRISE]

kinds = st.builds(
    lambda cpu, mem, nodes, ports, licences: LabKind((float(cpu), float(mem), 10.0, float(nodes), float(ports)),
                                                     frozenset(licences)),
    st.integers(1, 8), st.sampled_from([2, 4, 8, 12]), st.integers(1, 6), st.integers(0, 3),
    st.sampled_from([(), ("PERSONAL",), ("ENTERPRISE",), ("PERSONAL", "ENTERPRISE")]),
)


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _partitions(rest):
        yield [[first], *partition]
        for index in range(len(partition)):
            yield [*partition[:index], [first, *partition[index]], *partition[index + 1:]]


def _brute_force(labs: list[LabKind]) -> int | None:
    """The fewest workers, by trying every way to group the labs (None: some lab fits nowhere)."""
    def holds(group: list[int]) -> bool:
        for worker in WORKERS:
            total = tuple(0.0 for _ in DIMENSIONS)
            for index in group:
                total = add(total, labs[index].need)
            if all(labs[i].eligible(worker) for i in group) and fits(total, worker.capacity):
                return True
        return False

    best = None
    for partition in _partitions(list(range(len(labs)))):
        if (best is None or len(partition) < best) and all(holds(group) for group in partition):
            best = len(partition)
    return best


@settings(max_examples=40, deadline=None)
@given(st.lists(kinds, min_size=1, max_size=6))
def test_fewest_workers_is_the_exact_optimum_or_below_it(labs: list[LabKind]) -> None:
    labs = [lab for lab in labs if any(lab.eligible(w) for w in WORKERS)]
    optimum = _brute_force(labs)
    counts: dict[LabKind, int] = {}
    for lab in labs:
        counts[lab] = counts.get(lab, 0) + 1
    solved = FewestWorkers(WORKERS, list(counts))(counts)
    relaxed = FewestWorkers(WORKERS, list(counts), use_solver=False)(counts)
    assert optimum is not None
    assert solved.workers <= optimum and relaxed.workers <= optimum
    assert solved.exact and solved.workers == optimum  # small models solve to optimality
    if relaxed.exact:
        assert relaxed.workers == optimum


spans = st.lists(
    st.tuples(kinds, st.integers(0, 16), st.integers(1, 10)).map(
        lambda t: (t[0], T0 + timedelta(minutes=15 * t[1]), timedelta(minutes=15 * t[2]))),
    min_size=1, max_size=14,
)


@settings(max_examples=40, deadline=None)
@given(spans)
def test_the_bound_is_below_the_offline_schedule_which_is_never_overbooked(drawn: list) -> None:
    labs = [LabSpan(f"lab-{i}", kind, start, start + length) for i, (kind, start, length) in enumerate(drawn)
            if any(kind.eligible(w) for w in WORKERS)]
    bound = lower_bound(labs, WORKERS)
    plan = offline_schedule(labs, WORKERS)
    assert bound.hours <= plan.hours + 1e-9
    assert bound.capacity_hours <= plan.busy_hours + 1e-9
    assert plan.unplaceable == 0
    assert bound.peak_workers <= plan.workers
    # each piece of time needs at least the most copies-limited kind's share
    for _, _, counts in active_counts(labs):
        for kind, n in counts.items():
            assert FewestWorkers(WORKERS, [kind])({kind: n}).workers >= -(-n // max(kind.copies_in(w) for w in WORKERS))


def test_one_kind_is_copies_per_worker_and_boots_are_the_peak() -> None:
    kind = LabKind((4.0, 8.0, 10.0, 2.0, 1.0), frozenset({"PERSONAL"}))  # 2 per personal worker (cpu 8)
    labs = [LabSpan(f"a{i}", kind, T0, T0 + timedelta(hours=1)) for i in range(5)]  # 3 workers for 1 h
    labs += [LabSpan(f"b{i}", kind, T0 + timedelta(hours=2), T0 + timedelta(hours=3)) for i in range(2)]  # 1 for 1 h
    bound = lower_bound(labs, WORKERS)
    assert bound.peak_workers == 3 and bound.exact_share == 1.0
    assert bound.capacity_hours == 4.0
    assert abs(bound.boot_hours - 3 * 20 / 60) < 1e-9
    plan = offline_schedule(labs, WORKERS)
    # 3 boots, 4 busy hours, one worker restarts across the 1-hour gap (5 min)
    assert plan.workers == 3 and abs(plan.hours - (1.0 + 4.0 + 5 / 60)) < 1e-9


def test_the_solver_closes_what_the_relaxation_leaves_open() -> None:
    # no two of these share a personal worker (cpu or nodes), but the sums say 3 would do
    cpu_heavy = LabKind((5.0, 2.0, 10.0, 1.0, 0.0), frozenset({"PERSONAL"}))
    both = LabKind((4.0, 2.0, 10.0, 4.0, 0.0), frozenset({"PERSONAL"}))
    counts = {cpu_heavy: 2, both: 2}
    relaxed = FewestWorkers(WORKERS, list(counts), use_solver=False)(counts)
    assert (relaxed.workers, relaxed.exact, relaxed.method) == (3, False, "relaxation")
    solved = FewestWorkers(WORKERS, list(counts))(counts)
    assert (solved.workers, solved.exact, solved.method) == (4, True, "highs")


@settings(max_examples=30, deadline=None)
@given(spans)
def test_placing_by_the_served_ends_is_the_offline_schedule(drawn: list) -> None:
    labs = [LabSpan(f"lab-{i}", kind, start, start + length) for i, (kind, start, length) in enumerate(drawn)
            if any(kind.eligible(w) for w in WORKERS)]
    plain = offline_schedule(labs, WORKERS)
    same = offline_schedule(labs, WORKERS, placed_by={lab.lab_id: lab.end for lab in labs})
    assert same == plain


def test_placing_by_the_booked_holds_reserves_the_teardown_margin_but_bills_the_served_span() -> None:
    whole = LabKind((8.0, 8.0, 10.0, 2.0, 1.0), frozenset({"PERSONAL"}))  # one fills a personal worker (cpu 8)
    first = LabSpan("a", whole, T0, T0 + timedelta(hours=1))
    second = LabSpan("b", whole, T0 + timedelta(minutes=75), T0 + timedelta(minutes=135))
    served = offline_schedule([first, second], WORKERS)
    # one worker: boot, 1 h, a restart across the 15-minute gap, 1 h
    assert served.workers == 1 and abs(served.hours - (20 / 60 + 1 + 5 / 60 + 1)) < 1e-9
    booked = offline_schedule([first, second], WORKERS, placed_by={"a": T0 + timedelta(minutes=90)})
    # "a" holds its worker until 09:30 for placement, so "b" needs another; each bills its hour
    assert booked.workers == 2 and abs(booked.hours - 2 * (20 / 60 + 1)) < 1e-9
    assert abs(booked.busy_hours - 2.0) < 1e-9
