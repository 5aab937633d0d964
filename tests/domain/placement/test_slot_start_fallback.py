"""The slot-start fallback: a booking no worker can take by instantiation start may take a
worker still booting that is ready by the slot's start, and nothing else changes."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.placement import default_pipeline
from domain.placement.plugins.filters.worker_state import WorkerState
from domain.placement.slot_start_fallback import ready_by_slot_start
from tests.domain.placement.builders import MINUTE, T0, candidate, request


def test_a_booking_asks_for_a_worker_ready_by_its_slot_start_instead_of_its_instantiation_start() -> None:
    strict = request(hold_start=T0, timeslot_start=T0 + 15 * MINUTE)
    relaxed = ready_by_slot_start(strict)
    assert relaxed is not None
    assert strict.ready_by == T0 and relaxed.ready_by == T0 + 15 * MINUTE
    # the same hold: the reservation it makes is the one the strict request would have made
    assert (relaxed.hold_start, relaxed.hold_end, relaxed.timeslot_start) == (
        strict.hold_start, strict.hold_end, strict.timeslot_start)
    assert relaxed.requirements == strict.requirements and relaxed.port_names == strict.port_names


def test_asap_no_lead_and_a_passed_instantiation_start_have_no_fallback() -> None:
    assert ready_by_slot_start(request(timeslot_start=None)) is None
    assert ready_by_slot_start(request(instantiation_lead=timedelta(0))) is None
    # the slot already began: ready_by is "now" (the hold start) either way
    assert ready_by_slot_start(request(hold_start=T0, timeslot_start=T0 - 5 * MINUTE)) is None


@settings(max_examples=200, deadline=None)
@given(
    lead=st.integers(min_value=0, max_value=60),
    notice=st.integers(min_value=-30, max_value=90),  # slot start minus "now" (the hold start floor)
    ready=st.integers(min_value=-30, max_value=120),  # the booting worker's expected ready, from now
)
def test_the_fallback_accepts_exactly_the_workers_ready_by_the_slot_start(lead: int, notice: int, ready: int) -> None:
    now = T0
    slot = now + notice * MINUTE
    strict = request(hold_start=max(slot - lead * MINUTE, now), hold_end=max(slot, now) + 2 * 60 * MINUTE,
                     timeslot_start=slot, instantiation_lead=lead * MINUTE)
    booting = candidate(state="PROVISIONING", expected_ready_at=now + ready * MINUTE)
    relaxed = ready_by_slot_start(strict)
    strict_ok = WorkerState().filter(strict, booting) is None
    if relaxed is None:
        return
    relaxed_ok = WorkerState().filter(relaxed, booting) is None
    assert strict_ok <= relaxed_ok  # never refuses what the strict request accepts
    assert relaxed_ok == (booting.expected_ready_at <= max(slot, strict.hold_start))
    assert relaxed.ready_by > strict.ready_by


def test_the_pipeline_places_on_the_booting_worker_only_with_the_fallback() -> None:
    strict = request(hold_start=T0, timeslot_start=T0 + 15 * MINUTE)
    booting = candidate("worker-booting", state="PROVISIONING", expected_ready_at=T0 + 10 * MINUTE)
    late = candidate("worker-late", state="PROVISIONING", expected_ready_at=T0 + 16 * MINUTE)
    pipeline = default_pipeline()
    assert not pipeline.decide(strict, [booting, late]).placed
    relaxed = ready_by_slot_start(strict)
    assert relaxed is not None
    decision = pipeline.decide(relaxed, [booting, late])
    assert decision.placed and decision.chosen_worker_id == "worker-booting"
