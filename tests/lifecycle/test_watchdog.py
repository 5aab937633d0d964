"""Nothing stays in limbo: each stuck state ends in a recorded, explained outcome."""

from __future__ import annotations

from datetime import timedelta

from domain.instance import InstanceState, LabletInstance
from domain.timeslot import Timeslot
from domain.worker import Worker
from tests.lifecycle.conftest import World

S = InstanceState


def termination(world: World, instance_id: str) -> LabletInstance.InstanceTerminated:
    return next(s.event for s in world.store.read_stream(instance_id)
                if isinstance(s.event, LabletInstance.InstanceTerminated))


def test_a_no_show_stops_the_lab_and_ends_it(world: World) -> None:
    instance_id = world.book(start_in=timedelta(minutes=15), minutes=60)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    assert world.instance(instance_id).state is S.READY
    world.clock.advance(timedelta(minutes=15 + 29))  # 29 min into the timeslot: not yet
    world.run(controller)
    assert world.instance(instance_id).state is S.READY
    world.clock.advance(timedelta(minutes=1))
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.stop_reason == "no_show"
    assert "StopRequested" in world.events(instance_id)
    assert world.labs() == {} and instance_id not in world.worker().ledger


def test_a_grader_that_never_answers_fails_grading_and_the_lab_stops(world: World) -> None:
    instance_id = world.book(start_in=None, minutes=30)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    world.login(instance_id)
    world.clock.advance(timedelta(minutes=30))
    world.run(controller)
    assert world.instance(instance_id).state is S.GRADING
    world.clock.advance(timedelta(minutes=60))
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.stop_reason == "grading_failed"
    assert "grading_timeout" in (instance.last_error or "")
    assert "GradingFailed" in world.events(instance_id)
    assert world.labs() == {}


def test_instantiating_on_a_worker_that_never_gets_an_ip_ends_stuck_and_releases_the_hold(world: World) -> None:
    # a worker still provisioning (no IP): the instance was placed ahead of its boot
    template = world.worker().template
    booting = Worker.request(template, world.ctx())
    booting.start_provisioning("i-booting", world.ctx())
    world.store.save(booting)
    instance_id = world.book(start_in=None, worker_id=booting.id)
    world.instantiate(instance_id)
    controller = world.controller()
    for _ in range(4):  # looks again every 30 s while waiting for the worker
        world.run(controller)
        world.clock.advance(timedelta(minutes=30))
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.termination_reason == "stuck_timeout"
    event = termination(world, instance_id)
    assert event.previous_state == "INSTANTIATING" and "stuck in INSTANTIATING" in event.detail
    assert instance_id not in world.worker(booting.id).ledger


def test_a_queued_instance_that_never_fits_is_ended_by_its_timeslot(world: World) -> None:
    definition = world.definitions.get("ccna-basic-routing")
    version = definition.versions[definition.latest_version]
    now = world.clock.now()
    timeslot = Timeslot(now + timedelta(minutes=10), now + timedelta(minutes=40))
    instance = LabletInstance.request(version, "bob", timeslot, world.ctx("user:bob"))
    world.store.save(instance)
    controller = world.controller()
    world.run(controller)
    assert world.instance(instance.id).state is S.PENDING
    world.clock.advance(timedelta(minutes=40))
    world.run(controller)
    ended = world.instance(instance.id)
    assert ended.state is S.TERMINATED and ended.termination_reason == "stuck_timeout"
    assert "PENDING" in termination(world, instance.id).detail


def test_a_look_is_scheduled_for_the_next_deadline(world: World) -> None:
    instance_id = world.book(start_in=timedelta(minutes=15), minutes=60)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    # READY at 08:00, the timeslot starts 08:15: the no-show deadline is 08:45
    assert controller.due_at(instance_id) == world.clock.now() + timedelta(minutes=45)
    assert controller.next_due() == world.clock.now() + controller.settings.reconcile_interval
