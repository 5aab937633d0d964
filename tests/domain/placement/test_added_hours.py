"""AddedHours on its own: the billed hours a hold adds to a worker's busy stretches."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InsufficientCapacity
from domain.placement import PlacementPipeline, default_filters
from domain.placement.plugins.scores import AddedHours, BinPacking
from domain.placement.plugins.scores.added_hours import added_hours
from tests.domain.placement.builders import HOUR, MINUTE, T0, candidate, ledger, request, reserve

WAKE = 10 / 60  # the default wake-up, in hours


def _added(busy=None, state="RUNNING", **request_overrides) -> float:
    return added_hours(request(**request_overrides), candidate(ledger=busy, state=state))


def test_an_empty_worker_costs_the_hold_and_a_wake_up():
    assert _added() == pytest.approx(2 + WAKE)
    assert AddedHours().score(request(), candidate()) == pytest.approx(100 * (1 - (2 + WAKE) / (2 + 50 / 60)), abs=1e-4)


def test_a_hold_inside_a_busy_stretch_costs_nothing():
    busy = reserve(ledger(), "long", cpu=2, start=T0 - HOUR, end=T0 + 3 * HOUR)
    assert _added(busy) == 0.0
    assert AddedHours().score(request(), candidate(ledger=busy)) == 100.0


def test_sticking_out_of_a_stretch_costs_the_part_that_sticks_out():
    busy = reserve(ledger(), "earlier", cpu=2, start=T0 - HOUR, end=T0 + HOUR)
    assert _added(busy) == pytest.approx(1.0)


def test_a_gap_shorter_than_the_bridge_is_billed_not_a_wake_up():
    busy = reserve(ledger(), "before", cpu=2, start=T0 - HOUR, end=T0 - 20 * MINUTE)
    assert _added(busy) == pytest.approx(2 + 20 / 60)  # stays up across the 20 min


def test_a_hold_far_from_every_stretch_is_a_new_stretch():
    busy = reserve(ledger(), "morning", cpu=2, start=T0 - 4 * HOUR, end=T0 - 2 * HOUR)
    assert _added(busy) == pytest.approx(2 + WAKE)


def test_joining_two_stretches_saves_a_wake_up():
    busy = ledger()
    reserve(busy, "before", cpu=2, start=T0 - HOUR, end=T0)
    reserve(busy, "after", cpu=2, start=T0 + 3 * HOUR, end=T0 + 4 * HOUR)
    # the 3 h gap was two stretches (two wake-ups); now one: +3 h up, -1 wake-up
    assert _added(busy, hold_end=T0 + 3 * HOUR) == pytest.approx(3 - WAKE)


def test_an_asap_hold_on_a_worker_up_now_needs_no_wake_up():
    asap = {"timeslot_start": None}
    assert _added(**asap) == pytest.approx(2.0)
    assert _added(state="PROVISIONING", **asap) == pytest.approx(2.0)
    assert _added(state="STOPPED", **asap) == pytest.approx(2 + WAKE)


def test_the_pipeline_prefers_the_stretch_and_breaks_ties_by_fit():
    inside_small = candidate("w-a", ledger=reserve(ledger(), "x", cpu=2, start=T0 - HOUR, end=T0 + 3 * HOUR))
    inside_full = candidate("w-b", ledger=reserve(ledger(), "y", cpu=10, memory=40, nodes=10, start=T0, end=T0 + 2 * HOUR))
    # fuller but its stretch ends an hour earlier: the hold would keep it up an extra hour
    fuller_elsewhere = candidate("w-c", ledger=reserve(ledger(), "z", cpu=12, memory=48, nodes=12, start=T0 - HOUR, end=T0 + HOUR))
    idle = candidate("w-d")
    pipeline = PlacementPipeline(default_filters(), [AddedHours(weight=10), BinPacking()], "added-hours", "1")
    decision = pipeline.decide(request(), [idle, fuller_elsewhere, inside_small, inside_full])
    assert decision.ranking == ["w-b", "w-a", "w-c", "w-d"]
    # bin-packing alone would take the fullest over the window
    assert PlacementPipeline(default_filters(), [BinPacking()]).decide(
        request(), [idle, fuller_elsewhere, inside_small, inside_full]).chosen_worker_id == "w-c"


def test_negative_times_are_refused():
    with pytest.raises(ValueError):
        AddedHours(wake=timedelta(minutes=-1))


# -- properties ---------------------------------------------------------------

QUARTER = timedelta(minutes=15)
spans = st.lists(st.tuples(st.integers(-16, 24), st.integers(1, 12)), max_size=6)


def _worker(worker_id: str, holds, cpu_each: float = 2):
    book = ledger()
    for n, (start, length) in enumerate(holds):
        with contextlib.suppress(InsufficientCapacity):  # a full worker: skip what does not fit
            reserve(book, f"{worker_id}-{n}", cpu=cpu_each, start=T0 + start * QUARTER, end=T0 + (start + length) * QUARTER)
    return candidate(worker_id, ledger=book)


@settings(max_examples=60, deadline=None)
@given(holds=spans, other_holds=spans, start=st.integers(-8, 16), length=st.integers(1, 12), asap=st.booleans())
def test_score_falls_as_added_hours_rise_and_stays_in_range(holds, other_holds, start, length, asap):
    r = request(hold_start=T0 + start * QUARTER, hold_end=T0 + (start + length) * QUARTER,
                timeslot_start=None if asap else T0 + (start + 1) * QUARTER)
    plugin = AddedHours()
    one, other = _worker("w-1", holds), _worker("w-2", other_holds)
    added, other_added = added_hours(r, one), added_hours(r, other)
    # never more than the hold plus two bridges (joining two stretches) or a wake-up
    assert 0.0 <= added <= length / 4 + max(WAKE, 50 / 60) + 1e-9
    score, other_score = plugin.score(r, one), plugin.score(r, other)
    assert 0.0 <= score <= 100.0
    if added < other_added:
        assert score >= other_score
    if added == other_added:
        assert score == other_score


@settings(max_examples=40, deadline=None)
@given(fleet=st.lists(spans, min_size=1, max_size=5), cpu_each=st.sampled_from([2, 4, 8]),
       start=st.integers(-4, 16), length=st.integers(1, 8))
def test_the_pipeline_never_chooses_an_infeasible_worker(fleet, cpu_each, start, length):
    candidates = [_worker(f"w-{n}", holds, cpu_each) for n, holds in enumerate(fleet)]
    r = request(hold_start=T0 + start * QUARTER, hold_end=T0 + (start + length) * QUARTER,
                timeslot_start=T0 + (start + 1) * QUARTER)
    feasible = [c.worker_id for c in candidates if all(f.filter(r, c) is None for f in default_filters())]
    mixed = PlacementPipeline(default_filters(), [AddedHours(weight=10), BinPacking()], "added-hours", "1")
    # filters run first: only feasible workers are ranked, whatever the scores say
    assert sorted(mixed.decide(r, candidates).ranking) == sorted(feasible)
    alone = PlacementPipeline(default_filters(), [AddedHours()], "added-hours-only", "1").decide(r, candidates)
    if feasible:
        by_id = {c.worker_id: c for c in candidates}
        least = min(added_hours(r, by_id[w]) for w in feasible)
        assert added_hours(r, by_id[alone.chosen_worker_id]) <= least + 1e-9
    else:
        assert alone.chosen_worker_id is None
