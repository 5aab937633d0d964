"""The autoscaler's incremental snapshot equals one built afresh, after random event streams.

The streams are made by the real processors (autoscaler, worker controller on a simulated
cloud, the scheduler; labs run and archived by the harness, some cancelled):
bookings ahead and ASAP, clock jumps of various sizes, and checks at moments between
steps (the clock alone moves windows and ends holds). Speed must never change a decision.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import VirtualClock
from adapters.eventstore.factory import open_event_store
from domain.instance import LabletInstance
from processors.autoscaler import AutoscalerSettings
from tests.autoscaler.harness import Fleet, ctx
from tests.workers.conftest import START, seeded_templates

BOOK = st.tuples(st.just("book"), st.integers(1, 6), st.sampled_from([None, 0, 10, 25, 60, 180]),
                 st.sampled_from([30, 60, 120]))
ADVANCE = st.tuples(st.just("advance"), st.sampled_from([1, 3, 7, 15, 40, 90]))
CANCEL = st.tuples(st.just("cancel"), st.integers(0, 50))
PEEK = st.tuples(st.just("peek"), st.integers(0, 59))  # compare at a moment between steps
OPS = st.lists(st.one_of(BOOK, ADVANCE, ADVANCE, CANCEL, PEEK), min_size=3, max_size=25)


def templates() -> list:
    specs = seeded_templates()
    return [specs["personal-standard"], specs["enterprise-large"]]


def assert_view_matches(fleet: Fleet, at_minutes: int = 0) -> None:
    autoscaler = fleet.autoscaler
    autoscaler._catch_up()
    now = fleet.clock.now() + timedelta(minutes=at_minutes)
    assert autoscaler.view.snapshot(now) == autoscaler.fresh_snapshot(now)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_incremental_snapshot_equals_a_fresh_one(ops: list[tuple]) -> None:
    clock = VirtualClock(START.replace(hour=7))
    with open_event_store("memory") as store:
        fleet = Fleet.build(store, clock, templates(), real_scheduler=True,
                            settings=AutoscalerSettings(full_check_every=0))  # the test is the check
        booked: list[str] = []
        for op in ops:
            if op[0] == "book":
                _, count, ahead, minutes = op
                start = None if ahead is None else clock.now() + timedelta(minutes=ahead)
                booked += fleet.book(count, start, minutes)
            elif op[0] == "advance":
                fleet.step()
                clock.advance(timedelta(minutes=op[1]))
            elif op[0] == "cancel" and booked:
                instance = store.get(booked[op[1] % len(booked)])
                if instance.is_live:
                    held_on = instance.worker_id if instance.holds_capacity else None
                    instance.terminate("cancelled", ctx(clock, "user"))
                    changed: list[LabletInstance] = [instance]
                    if held_on is not None:
                        worker = store.get(held_on)
                        if worker.release(instance.id, ctx(clock, "user"), reason="cancelled"):
                            changed.append(worker)
                    store.save(*changed)
            elif op[0] == "peek":
                assert_view_matches(fleet, op[1])
            assert_view_matches(fleet)
        fleet.step()
        assert_view_matches(fleet)
        assert fleet.autoscaler.view_mismatches == 0


def test_a_wrong_view_is_found_by_the_full_check_and_repaired() -> None:
    clock = VirtualClock(START.replace(hour=7))
    with open_event_store("memory") as store:
        fleet = Fleet.build(store, clock, templates(), settings=AutoscalerSettings(full_check_every=1))
        fleet.book(3, clock.now() + timedelta(minutes=60), 60)
        fleet.step()
        autoscaler = fleet.autoscaler
        assert autoscaler.view_mismatches == 0
        autoscaler.view._live_ids.clear()  # the view loses its instances: plans would miss demand
        fleet.book(1, None, 30)
        clock.advance(timedelta(minutes=1))
        fleet.step()
        assert autoscaler.view_mismatches == 1
        assert_view_matches(fleet)
