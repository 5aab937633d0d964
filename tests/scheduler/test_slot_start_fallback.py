"""A booking made with less notice than a boot: the scheduler takes a worker still booting
that is ready by the slot's start (instead of leaving the booking queued while bookings
with later slots take that room), prefers one ready by instantiation start, and waits for
the worker to run before instantiating."""

from __future__ import annotations

from datetime import timedelta

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.instance import InstanceState
from domain.worker import WorkerState
from processors.scheduler import Scheduler
from tests.scheduler.support import ADMIN, T0, new_instance, new_worker, requirements, template

FULL = requirements(cpu=4, memory=16)  # one per 4-cpu worker
MINUTE = timedelta(minutes=1)


def booting_worker(ready_in: timedelta, name: str = "booting") -> object:
    worker = new_worker(template(name, cpu=4, memory=16), state=WorkerState.PENDING, at=T0)
    worker.start_provisioning(f"i-{name}", ADMIN, expected_ready_at=T0 + ready_in)
    return worker


def test_a_late_booking_takes_a_booting_worker_ready_by_its_slot_start_and_waits_for_it(
    store: EventStore, clock: VirtualClock
) -> None:
    worker = booting_worker(12 * MINUTE)  # ready after instantiation start (T0+5), before the slot (T0+20)
    store.save(worker)
    booking = new_instance(T0 + 20 * MINUTE, req=FULL)
    store.save(booking)
    scheduler = Scheduler(store, clock)

    assert scheduler.run_until_idle().placed == 1
    placed = store.get(booking.id)
    assert placed.state is InstanceState.SCHEDULED and placed.worker_id == worker.id
    assert placed.hold_start == T0 + 5 * MINUTE  # the hold is the booking's own, lead included

    clock.advance(6 * MINUTE)  # instantiation start has come, the worker still boots
    scheduler.run_until_idle()
    assert store.get(booking.id).state is InstanceState.SCHEDULED
    ready = store.get(worker.id)
    ready.mark_ready("10.0.0.9", ADMIN)
    store.save(ready)
    clock.advance(6 * MINUTE)
    scheduler.run_until_idle()
    assert store.get(booking.id).state is InstanceState.INSTANTIATING


def test_a_worker_ready_by_instantiation_start_is_preferred(store: EventStore, clock: VirtualClock) -> None:
    late = booting_worker(12 * MINUTE, "late")
    early = booting_worker(4 * MINUTE, "early")
    store.save(late)
    store.save(early)
    booking = new_instance(T0 + 20 * MINUTE, req=FULL)
    store.save(booking)
    Scheduler(store, clock).run_until_idle()
    assert store.get(booking.id).worker_id == early.id


def test_a_worker_ready_after_the_slot_start_is_still_refused(store: EventStore, clock: VirtualClock) -> None:
    store.save(booting_worker(21 * MINUTE))
    booking = new_instance(T0 + 20 * MINUTE, req=FULL)
    store.save(booking)
    Scheduler(store, clock).run_until_idle()
    assert store.get(booking.id).state is InstanceState.PENDING
    assert "WorkerState" in store.get(booking.id).last_placement_failure
