"""The queue: unplaceable instances wait, FIFO by start time, and are retried when the
log says capacity appeared (a worker, a released hold, a template change); never pre-empted."""

from __future__ import annotations

from datetime import timedelta

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.context import CommandContext
from domain.instance import InstanceState
from domain.worker import WorkerState
from processors.scheduler import Scheduler
from tests.scheduler.support import ADMIN, T0, check_invariants, new_instance, new_worker, requirements, template

FULL = requirements(cpu=4, memory=16)  # one per 4-cpu worker


def test_queued_instances_wait_in_start_time_order_and_are_placed_when_a_worker_comes(
    store: EventStore, clock: VirtualClock
) -> None:
    first = new_worker(template(cpu=4, memory=16))
    store.save(first)
    early_request_late_slot = new_instance(T0 + timedelta(hours=3), req=FULL)
    late_request_early_slot = new_instance(T0 + timedelta(hours=2), req=FULL, at=T0 + timedelta(seconds=1))
    store.save(early_request_late_slot)
    store.save(late_request_early_slot)
    scheduler = Scheduler(store, clock)

    scheduler.run_until_idle()
    # both windows overlap: the earlier *start* gets the worker, not the earlier request
    assert store.get(late_request_early_slot.id).state is InstanceState.SCHEDULED
    assert store.get(early_request_late_slot.id).state is InstanceState.PENDING
    assert not scheduler.run_until_idle().acted  # nothing changed: no retry, no new event

    second = new_worker(template("second", cpu=4, memory=16), state=WorkerState.PENDING)
    store.save(second)  # requested, ready at T0: in time for the slot
    report = scheduler.run_until_idle()

    assert report.placed == 1
    assert store.get(early_request_late_slot.id).worker_id == second.id
    check_invariants(store, [first.id, second.id], [early_request_late_slot.id, late_request_early_slot.id])


def test_a_released_hold_makes_room_for_the_queue_without_moving_anyone(store: EventStore, clock: VirtualClock) -> None:
    worker = new_worker(template(cpu=4, memory=16))
    store.save(worker)
    holder = new_instance(T0 + timedelta(hours=1), req=FULL)
    store.save(holder)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()
    waiting = new_instance(T0 + timedelta(hours=1), req=FULL)
    store.save(waiting)
    scheduler.run_until_idle()
    assert store.get(holder.id).worker_id == worker.id  # no pre-emption
    assert store.get(waiting.id).state is InstanceState.PENDING

    cancelled = store.get(holder.id)
    cancelled.terminate("cancelled", CommandContext(at=T0, actor="user:alice"))
    store.save(cancelled)
    report = scheduler.run_until_idle()  # releases the hold, then places the queue

    assert report.released == 1 and report.placed == 1
    assert store.get(waiting.id).worker_id == worker.id
    check_invariants(store, [worker.id], [holder.id, waiting.id])


def test_a_worker_becoming_ready_in_time_lets_a_booking_in(store: EventStore, clock: VirtualClock) -> None:
    booting = new_worker(template(cpu=4, memory=16), state=WorkerState.PENDING, at=T0)
    booting.start_provisioning("i-1", ADMIN, expected_ready_at=T0 + timedelta(hours=5))
    store.save(booting)
    booking = new_instance(T0 + timedelta(hours=1), req=FULL)
    store.save(booking)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()
    assert store.get(booking.id).state is InstanceState.PENDING
    assert "WorkerState" in store.get(booking.id).last_placement_failure

    worker = store.get(booting.id)
    worker.mark_ready("10.0.0.9", ADMIN)
    store.save(worker)
    assert scheduler.run_until_idle().placed == 1


def test_the_safety_rescan_retries_the_queue_when_time_alone_made_room(store: EventStore, clock: VirtualClock) -> None:
    worker = new_worker(template(cpu=4, memory=16))
    store.save(worker)
    now_lab = new_instance(None, 30, req=FULL)
    store.save(now_lab)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()
    asap = new_instance(None, 180, req=FULL, at=T0)
    store.save(asap)
    scheduler.run_until_idle()
    assert store.get(asap.id).state is InstanceState.PENDING

    clock.advance(timedelta(minutes=61))  # the first hold (30 min + 30 min margin) is over
    assert scheduler.run_until_idle().placed == 1
    assert store.get(asap.id).worker_id == worker.id
