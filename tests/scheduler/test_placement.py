"""Placement end to end through the event store: decisions are events, reservations and
schedules agree, a second pass (or a second scheduler) changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.instance import InstanceState
from processors.scheduler import Scheduler, SchedulerSettings
from tests.scheduler.support import T0, check_invariants, new_instance, new_worker, requirements, template

BATCHES = [pytest.param(1, id="two-saves"), pytest.param(64, id="batched")]


def names(store: EventStore, stream_id: str) -> list[str]:
    return [e.event_name for e in store.read_stream(stream_id)]


@pytest.mark.parametrize("batch_size", [b.values[0] for b in BATCHES], ids=[b.id for b in BATCHES])
def test_instances_are_placed_with_their_decisions_recorded(
    store: EventStore, clock: VirtualClock, batch_size: int
) -> None:
    small = new_worker(template("small", cpu=4, memory=16))
    big = new_worker(template("big", cpu=16, memory=64, ports=(3000, 3099)))
    evaluation = new_worker(template("eval", license_type="EVALUATION", max_nodes=5))
    store.save(small, big, evaluation)
    req = requirements(license_affinity=("PERSONAL", "ENTERPRISE"))
    instances = [new_instance(T0 + timedelta(hours=1), req=req) for _ in range(3)]
    store.save(*instances)

    report = Scheduler(store, clock, settings=SchedulerSettings(batch_size=batch_size)).run_until_idle()

    assert report.placed == 3 and report.failed == 0
    placed = check_invariants(store, [small.id, big.id, evaluation.id], [i.id for i in instances])
    for instance in placed.values():
        assert instance.state is InstanceState.SCHEDULED
        assert names(store, instance.id) == ["InstanceRequested", "PlacementDecided", "InstanceScheduled"]
        decided = store.read_stream(instance.id)[1].event
        assert decided.decision_id == instance.placement_decision_id
        record = decided.decision
        assert record["chosen_worker_id"] == instance.worker_id == decided.worker_id
        assert record["policy"] == "bin-packing" and record["policy_version"]
        assert record["candidates"] == sorted([small.id, big.id, evaluation.id])
        assert record["rejections"][evaluation.id][0]["plugin"] == "LicenseAffinity"
        assert record["ranking"][0] == instance.worker_id and instance.worker_id in record["scores"]
        assert record["inputs"]["request"]["instance_id"] == instance.id
        reservation = store.get(instance.worker_id).ledger.get(instance.id)
        assert reservation.hold_start == T0 + timedelta(minutes=45)  # timeslot start - lead
        assert reservation.hold_end == T0 + timedelta(hours=2, minutes=30)  # end + teardown margin
    # bin-packing: the small worker fills up first (2 cpu each of 4), the third goes big
    assert sorted(i.worker_id for i in placed.values()) == sorted([small.id, small.id, big.id])


def test_nothing_fits_records_why_once_and_stays_queued(store: EventStore, clock: VirtualClock) -> None:
    worker = new_worker(template(cpu=4, memory=16))
    store.save(worker)
    huge = new_instance(None, req=requirements(cpu=8, memory=8))
    store.save(huge)
    scheduler = Scheduler(store, clock)

    scheduler.run_until_idle()
    scheduler.run_until_idle(T0 + timedelta(minutes=5))
    clock.advance(timedelta(minutes=2))
    assert not Scheduler(store, clock).run_until_idle().acted  # a second scheduler agrees

    assert names(store, huge.id) == ["InstanceRequested", "PlacementFailed"]
    failed = store.read_stream(huge.id)[1].event
    assert store.get(huge.id).state is InstanceState.PENDING
    assert failed.summary == "no worker fits (1 considered: ResourcesOverWindow 1)"
    assert failed.decision["needed"]["resources"]["cpu_cores"] == 8
    assert "cpu_cores 8 requested > capacity 4" in failed.decision["rejections"][worker.id][0]["reason"]


def test_a_second_pass_and_a_second_scheduler_change_nothing(store: EventStore, clock: VirtualClock) -> None:
    workers = [new_worker(template(f"t{n}")) for n in range(2)]
    store.save(*workers)
    instances = [new_instance(T0 + timedelta(hours=2)) for _ in range(6)]
    store.save(*instances)
    Scheduler(store, clock).run_until_idle()
    position = store.max_position()

    assert not Scheduler(store, clock).run_until_idle().acted
    assert store.max_position() == position


def test_asap_holds_start_now_and_future_bookings_reserve_their_window(store: EventStore, clock: VirtualClock) -> None:
    worker = new_worker(template(cpu=4, memory=16, ports=(2000, 2001)))
    store.save(worker)
    asap = new_instance(None, 60)
    later = new_instance(T0 + timedelta(hours=3), 60)  # its hold starts after asap's ends: ports reused
    store.save(asap, later)

    Scheduler(store, clock, settings=SchedulerSettings(instantiation_lead=timedelta(minutes=10))).run_until_idle()

    ledger = store.get(worker.id).ledger
    assert ledger.get(asap.id).hold_start == T0
    assert ledger.get(later.id).hold_start == T0 + timedelta(hours=2, minutes=50)
    assert ledger.get(asap.id).ports == ledger.get(later.id).ports == {"serial_1": 2000, "vnc_1": 2001}


def test_a_booking_whose_slot_is_over_is_explained_not_placed(store: EventStore, clock: VirtualClock) -> None:
    store.save(new_worker())
    stale = new_instance(T0 - timedelta(hours=3), 60, at=T0 - timedelta(hours=4))
    store.save(stale)
    Scheduler(store, clock).run_until_idle()
    failed = store.read_stream(stale.id)[-1].event
    assert failed.summary == "the timeslot is over"
    assert store.get(stale.id).state is InstanceState.PENDING
