"""A lost worker's SCHEDULED instances go back to the queue and are re-placed; its live
ones are terminated; its holds are released."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.context import CommandContext
from domain.instance import InstanceState
from domain.worker import Worker, WorkerState
from processors.scheduler import Scheduler
from tests.scheduler.support import ADMIN, T0, check_invariants, new_instance, new_worker, requirements, template

HALF = requirements(cpu=2, memory=8)


def provisioning_failed(worker: Worker, ctx: CommandContext) -> None:
    worker.provisioning_failed("boot timeout", ctx)


def terminated(worker: Worker, ctx: CommandContext) -> None:
    worker.terminate("worker_lost", ctx, force=True)


LOSSES: dict[str, tuple[WorkerState, Callable[[Worker, CommandContext], None], timedelta, str]] = {
    "provisioning failed": (WorkerState.PROVISIONING, provisioning_failed, timedelta(0), "worker_lost"),
    "terminated": (WorkerState.RUNNING, terminated, timedelta(0), "worker_lost"),
    "drained past its deadline": (WorkerState.RUNNING, lambda w, c: w.start_draining("admin", c, timeout_hours=1),
                                  timedelta(hours=1, minutes=1), "drain_timeout"),
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_scheduled_instances_are_re_placed_and_live_ones_terminated(
    store: EventStore, clock: VirtualClock, loss: str
) -> None:
    state, lose, wait, reason = LOSSES[loss]
    doomed = new_worker(template("doomed", cpu=4, memory=16), state=state)
    store.save(doomed)
    live = new_instance(None, 240, req=HALF)
    booked = new_instance(T0 + timedelta(hours=3), req=HALF)
    store.save(live, booked)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()  # live is instantiated at once (ASAP) once its worker runs, booked waits
    booting = state is WorkerState.PROVISIONING
    # On a worker still booting, nothing is instantiated: its boot may yet fail.
    assert store.get(live.id).state is (InstanceState.SCHEDULED if booting else InstanceState.INSTANTIATING)
    assert store.get(booked.id).worker_id == doomed.id

    spare = new_worker(template("spare", cpu=4, memory=16, ports=(4000, 4009)))
    worker = store.get(doomed.id)
    lose(worker, ADMIN)
    store.save(worker, spare)
    clock.advance(wait)
    report = scheduler.run_until_idle()

    if booting:  # a failed boot ends nothing: both are placed again (SPEC §5 boot failures)
        assert store.get(live.id).state is InstanceState.INSTANTIATING and store.get(live.id).worker_id == spare.id
        assert report.requeued == 2 and report.terminated == 0 and report.placed == 2
        check_invariants(store, [doomed.id, spare.id], [live.id, booked.id])
        return
    assert store.get(live.id).state is InstanceState.TERMINATED
    assert store.get(live.id).termination_reason == reason
    rebooked = store.get(booked.id)
    assert rebooked.state is InstanceState.SCHEDULED and rebooked.worker_id == spare.id
    requeued = [e.event for e in store.read_stream(booked.id) if e.event_name == "InstanceRequeued"]
    assert [(e.reason, e.previous_worker_id) for e in requeued] == [(reason, doomed.id)]
    assert store.get(doomed.id).ledger.reservations() == []
    assert report.requeued == 1 and report.terminated == 1 and report.placed == 1
    check_invariants(store, [doomed.id, spare.id], [live.id, booked.id])


def test_a_draining_worker_keeps_the_bookings_its_deadline_lets_finish(store: EventStore, clock: VirtualClock) -> None:
    worker = new_worker(template(cpu=4, memory=16))
    store.save(worker)
    booked = new_instance(T0 + timedelta(minutes=50), minutes=30, req=HALF)  # over before the deadline
    store.save(booked)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()
    draining = store.get(worker.id)
    draining.start_draining("admin", CommandContext(at=T0, actor="admin:ops"), timeout_hours=1.5)
    store.save(draining)

    clock.advance(timedelta(minutes=30))
    assert not scheduler.run_until_idle().acted
    assert store.get(booked.id).worker_id == worker.id
    assert scheduler.next_wake() is not None and scheduler.next_wake() <= T0 + timedelta(minutes=90)


def test_an_admin_drain_deadline_gives_up_at_once_the_bookings_it_would_cut(store: EventStore,
                                                                             clock: VirtualClock) -> None:
    """Not started on the drained worker only to be ended at its deadline: requeued at the
    drain, placed on another worker; a lab already running stays (the admin's choice)."""
    drained, other = new_worker(template(cpu=4, memory=16)), new_worker(template(cpu=4, memory=16))
    store.save(drained)
    running = new_instance(None, minutes=120, req=HALF)
    store.save(running)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()
    assert store.get(running.id).worker_id is not None
    first = store.get(running.id).worker_id
    store.save(other)
    later = new_instance(T0 + timedelta(minutes=40), minutes=60, req=HALF)
    store.save(later)
    scheduler.run_until_idle()
    drain_target = store.get(later.id).worker_id
    assert drain_target is not None
    worker = store.get(drain_target)
    worker.start_draining("admin", CommandContext(at=T0, actor="admin:ops"), timeout_hours=1)
    store.save(worker)

    scheduler.run_until_idle()
    moved = store.get(later.id)
    assert moved.worker_id is not None and moved.worker_id != drain_target  # placed elsewhere
    assert later.id not in store.get(drain_target).ledger
    if first == drain_target:  # the running lab is not moved: it ends at the deadline
        assert store.get(running.id).worker_id == drain_target
    check_invariants(store, [drained.id, other.id], [running.id, later.id])
