"""The autoscaler's process-manager rules on a virtual clock (the policy itself is tested in tests/domain/scaling)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.clock import VirtualClock
from adapters.eventstore.store import EventStore
from domain.instance import InstanceState
from domain.scaling import ForceTerminateLeftovers
from domain.scaling_decision import ScalingDecision
from domain.worker import Worker, WorkerState
from processors.autoscaler import Autoscaler
from tests.autoscaler.harness import Fleet, ctx
from tests.workers.conftest import seeded_templates

W = WorkerState


def personal_fleet(store: EventStore, clock: VirtualClock) -> Fleet:
    return Fleet.build(store, clock, [seeded_templates()["personal-standard"]])


def decided(store: EventStore) -> list[ScalingDecision.ScalingDecided]:
    return [e.event for e in store.read_all(limit=100_000) if isinstance(e.event, ScalingDecision.ScalingDecided)]


def test_two_autoscalers_racing_launch_the_workers_once(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    fleet.book(30, clock.now() + timedelta(minutes=40), 60)  # needed in 25 min: launch due now
    first, second = fleet.autoscaler, Autoscaler(store, clock)
    planned_by_second = second._record

    def racing(result, now):  # noqa: ANN001, ANN202 - the second plans, the first saves in between
        second._record = planned_by_second
        first.tick(force=True)
        return planned_by_second(result, now)

    second._record = racing
    outcome = second.tick(force=True)

    workers = fleet.workers()
    assert len(workers) == 3  # 30 labs x 2 nodes / 20 nodes per worker
    assert outcome is not None and outcome.launched_worker_ids == []
    assert [sorted(d.launched_worker_ids) for d in decided(store)] == [sorted(w.id for w in workers)]


def test_planning_again_records_nothing_new(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    fleet.book(10, clock.now() + timedelta(hours=3), 60)
    for _ in range(5):
        fleet.autoscaler.tick(force=True)
        clock.advance(timedelta(minutes=1))
    [waiting] = decided(store)  # one decision: the launch is deferred; the same wait is not re-recorded
    assert waiting.actions == [] or all(a["action"] == "NoAction" for a in waiting.actions)
    assert waiting.deferred and waiting.deferred[0]["count"] == 1
    assert fleet.workers() == []


def test_a_stopped_worker_is_restarted_before_anything_is_launched(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    stopped_id = stopped_worker(fleet)
    fleet.book(5, clock.now() + timedelta(minutes=25), 60)  # needed in 10 min: restart (5) fits, launch (20) not
    decision = fleet.autoscaler.tick()
    assert [a.kind for a in decision.plan.actions] == ["RestartWorker"]
    assert decision.launched_worker_ids == []
    assert store.get(stopped_id).state is W.PROVISIONING
    asyncio.run(fleet.controller.tick())
    clock.advance(timedelta(minutes=6))  # 5 min restart, +-10 % jitter
    asyncio.run(fleet.controller.tick())
    assert store.get(stopped_id).state is W.RUNNING
    assert len(fleet.workers()) == 1


def test_a_worker_with_a_live_lab_is_never_stopped_even_past_its_hold(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    [lab] = fleet.book(1, clock.now() + timedelta(minutes=40), 30)
    fleet.run_until(clock.now() + timedelta(minutes=30))  # launched, placed, lab RUNNING
    assert store.get(lab).state is InstanceState.RUNNING
    worker_id = store.get(lab).worker_id
    # The lab outlives its hold (no collection yet): hours later the worker is still up.
    hold_end = store.get(lab).hold_end
    while clock.now() < hold_end + timedelta(hours=3):
        clock.advance(timedelta(minutes=10))
        fleet.autoscaler.tick()
        asyncio.run(fleet.controller.tick())
    assert store.get(worker_id).state is W.RUNNING
    # Once the lab is archived and its hold released, the worker stops.
    archive(fleet, lab)
    fleet.autoscaler.tick()
    asyncio.run(fleet.controller.tick())
    assert store.get(worker_id).state is W.STOPPING


def test_a_drain_without_a_timeout_never_ends_a_lab(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    [lab] = fleet.book(1, clock.now() + timedelta(minutes=40), 30)
    fleet.run_until(clock.now() + timedelta(minutes=30))
    worker_id = store.get(lab).worker_id
    worker = store.get(worker_id)
    worker.start_draining("admin", ctx(clock, "admin:ops"))  # no timeout
    store.save(worker)
    until = clock.now() + 3 * timedelta(hours=worker.template.drain_timeout_hours)
    while clock.now() < until:
        clock.advance(timedelta(minutes=10))
        decision = fleet.autoscaler.tick()
        assert decision is None or not decision.plan.of_type(ForceTerminateLeftovers)
    assert store.get(worker_id).state is W.DRAINING and store.get(lab).state is InstanceState.RUNNING


def test_drain_timeout_terminates_the_leftovers_and_stops_the_worker(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    [lab] = fleet.book(1, clock.now() + timedelta(minutes=40), 30)
    fleet.run_until(clock.now() + timedelta(minutes=30))
    worker_id = store.get(lab).worker_id
    worker = store.get(worker_id)
    # An admin drains it with the template's timeout: the one way a lab is ended by a drain.
    worker.start_draining("admin", ctx(clock, "admin:ops"), timeout_hours=worker.template.drain_timeout_hours)
    store.save(worker)
    drain_timeout = timedelta(hours=worker.template.drain_timeout_hours)
    until = clock.now() + drain_timeout
    while clock.now() < until - timedelta(minutes=10):
        clock.advance(timedelta(minutes=10))
        fleet.autoscaler.tick()
    assert store.get(worker_id).state is W.DRAINING and store.get(lab).state is InstanceState.RUNNING
    clock.advance(timedelta(minutes=10))
    decision = fleet.autoscaler.tick()
    assert [a.kind for a in decision.plan.actions] == ["ForceTerminateLeftovers", "StopWorker"]
    instance = store.get(lab)
    assert instance.state is InstanceState.TERMINATED and instance.termination_reason == "drain_timeout"
    worker = store.get(worker_id)
    assert worker.state is W.STOPPING and worker.reservations() == []
    asyncio.run(fleet.controller.tick())
    clock.advance(timedelta(minutes=2))
    asyncio.run(fleet.controller.tick())
    assert store.get(worker_id).state is W.STOPPED
    assert decision.rejected == []


def test_refused_actions_are_recorded_with_the_error(store: EventStore, clock: VirtualClock) -> None:
    fleet = personal_fleet(store, clock)
    running_id = stopped_worker(fleet, stop=False)
    # Between the plan and its execution an admin drains the worker the plan stops.
    autoscaler = fleet.autoscaler
    execute = autoscaler._execute

    def admin_first(decision, now):  # noqa: ANN001, ANN202
        worker = store.get(running_id)
        worker.stop("admin", ctx(clock, "admin:ops"))
        store.save(worker)
        return execute(decision, now)

    autoscaler._execute = admin_first
    decision = autoscaler.tick(force=True)
    assert [a.kind for a in decision.plan.actions] == ["StopWorker"]
    [rejected] = decision.rejected
    assert rejected["worker_id"] == running_id and rejected["error"].startswith("IllegalTransition")
    events = [e.event for e in store.read_all(limit=100_000)
              if isinstance(e.event, ScalingDecision.ScalingActionsRejected)]
    assert [e.decision_id for e in events] == [decision.decision_id]


# -- helpers ------------------------------------------------------------------------------
def stopped_worker(fleet: Fleet, *, stop: bool = True) -> str:
    """An idle RUNNING (or, by default, STOPPED) worker of the personal template, made by an admin."""
    spec = seeded_templates()["personal-standard"]
    worker = Worker.request(spec, ctx(fleet.clock, "admin:ops"), reason="admin")
    fleet.store.save(worker)
    asyncio.run(fleet.controller.tick())
    fleet.clock.advance(timedelta(minutes=spec.startup_minutes * 1.1 + 1))  # boot +-10 % jitter
    asyncio.run(fleet.controller.tick())
    if stop:
        fleet.autoscaler.tick(force=True)  # idle with nothing booked: stopped
        asyncio.run(fleet.controller.tick())
        fleet.clock.advance(timedelta(minutes=2))
        asyncio.run(fleet.controller.tick())
        assert fleet.store.get(worker.id).state is W.STOPPED
    return worker.id


def archive(fleet: Fleet, instance_id: str) -> None:
    c = ctx(fleet.clock, "system:instance-controller")
    instance = fleet.store.get(instance_id)
    worker = fleet.store.get(instance.worker_id)
    instance.request_stop("collected", c)
    instance.mark_stopped(c)
    instance.archive(c)
    instance.terminate(None, c)
    worker.release(instance_id, c, reason="archived")
    fleet.store.save(instance, worker)


def test_asap_labs_waiting_for_a_booting_worker_launch_nothing_more(store: EventStore, clock: VirtualClock) -> None:
    """ASAP labs cannot be placed on a worker still booting; re-planning every minute must not
    launch again for them (the booting worker is counted from its expected ready time)."""
    fleet = personal_fleet(store, clock)
    fleet.book(5, None, 60)
    for _ in range(30):
        fleet.step(place=False)
        clock.advance(timedelta(minutes=1))
    workers = fleet.workers()
    assert len(workers) == 1 and workers[0].state is W.RUNNING
    launches = [a for d in decided(store) for a in d.actions if a["action"] == "LaunchWorker"]
    assert [a["count"] for a in launches] == [1] and "late" in launches[0]["reason"]
