"""A scheduler that stops between its two saves (hold on the worker, schedule on the
instance) leaves a hold without a scheduled instance: the next pass completes it, or
undoes it when the instance moved on. Stray holds are released."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.context import CommandContext
from domain.instance import InstanceState
from processors.scheduler import Scheduler, SchedulerSettings
from tests.scheduler.support import T0, check_invariants, new_instance, new_worker, template

TWO_SAVES = SchedulerSettings(batch_size=1)


class Crash(BaseException):
    """The process dies (not an error the scheduler could handle)."""


def crash_between_the_saves(store: EventStore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> Scheduler:
    crashing = Scheduler(store, clock, settings=TWO_SAVES)

    def die(*args: object, **kwargs: object) -> bool:
        raise Crash

    monkeypatch.setattr(crashing, "_schedule", die)
    with pytest.raises(Crash):
        crashing.run_pass()
    return crashing


def test_the_next_pass_completes_a_hold_left_by_a_crash(
    store: EventStore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = new_worker()
    instance = new_instance(T0 + timedelta(hours=1))
    store.save(worker, instance)
    crash_between_the_saves(store, clock, monkeypatch)
    assert instance.id in store.get(worker.id).ledger
    assert store.get(instance.id).state is InstanceState.PENDING

    restarted = Scheduler(store, clock, settings=TWO_SAVES)
    assert not restarted.run_until_idle().acted  # maybe still in flight: wait the grace period
    assert restarted.next_wake() == T0 + TWO_SAVES.recovery_grace
    clock.advance(TWO_SAVES.recovery_grace)
    report = restarted.run_until_idle()

    assert report.recovered == 1 and report.placed == 0
    recovered = store.get(instance.id)
    held = store.get(worker.id).ledger.get(instance.id)
    assert recovered.state is InstanceState.SCHEDULED and recovered.worker_id == worker.id
    assert recovered.allocated_ports == held.ports and recovered.hold_start == held.hold_start
    decided = [e.event for e in store.read_stream(instance.id) if e.event_name == "PlacementDecided"]
    assert decided[0].decision["recovered"] is True
    check_invariants(store, [worker.id], [instance.id])


def test_a_hold_whose_instance_was_terminated_meanwhile_is_released(
    store: EventStore, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = new_worker()
    instance = new_instance(T0 + timedelta(hours=1))
    store.save(worker, instance)
    crash_between_the_saves(store, clock, monkeypatch)
    cancelled = store.get(instance.id)
    cancelled.terminate("cancelled", CommandContext(at=T0, actor="user:alice"))
    store.save(cancelled)

    report = Scheduler(store, clock, settings=TWO_SAVES).run_until_idle()

    assert report.released == 1
    assert store.get(worker.id).ledger.reservations() == []
    released = store.read_stream(worker.id)[-1].event
    assert (type(released).__name__, released.reason) == ("CapacityReleased", "instance_finished")


def test_a_stray_hold_on_another_worker_is_released(store: EventStore, clock: VirtualClock) -> None:
    first, second = new_worker(template("a")), new_worker(template("b"))
    instance = new_instance(T0 + timedelta(hours=1))
    store.save(first, second, instance)
    scheduler = Scheduler(store, clock)
    scheduler.run_until_idle()
    placed_on = store.get(instance.id).worker_id
    other = store.get(second.id if placed_on == first.id else first.id)
    scheduled = store.get(instance.id)
    other.reserve(instance.id, scheduled.requirements.resources, 2, ["serial_1", "vnc_1"],
                  scheduled.hold_start, scheduled.hold_end, CommandContext(at=T0, actor="bug"))
    store.save(other)

    assert scheduler.run_until_idle().released == 1
    check_invariants(store, [first.id, second.id], [instance.id])
