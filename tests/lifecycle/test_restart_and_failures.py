"""Restarting a stopped lab, and what happens when instantiation fails."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from adapters.cml.simulated import SimulatedCml
from domain.instance import InstanceState, LabletInstance
from processors.ports.cml import CmlUnavailable, LabStatus
from tests.lifecycle.conftest import Fuse, FusedCml, World, endpoint_for

S = InstanceState


def lab_status(world: World, instance: LabletInstance) -> LabStatus:
    lab = world.cml._labs[world.worker_id][instance.cml_lab_id]  # type: ignore[attr-defined]
    return lab.status(0.0)


def test_a_lab_stopped_on_request_is_kept_until_its_timeslot_ends_and_can_be_restarted(world: World) -> None:
    instance_id = world.book(start_in=None, minutes=60)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    world.login(instance_id)
    instance = world.instance(instance_id)
    instance.request_stop("user_request", world.ctx("user:alice"))
    world.store.save(instance)
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.STOPPED
    assert lab_status(world, instance) is LabStatus.STOPPED  # stopped on CML, not deleted
    assert instance_id in world.worker().ledger  # the hold stays: it may restart

    world.clock.advance(timedelta(minutes=10))
    instance.restart(world.ctx("admin:adm"), reason="admin_request")  # POST /start
    world.store.save(instance)
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.RUNNING
    assert lab_status(world, instance) is LabStatus.STARTED
    assert len(world.labs()) == 1

    world.clock.advance(timedelta(minutes=50))  # the timeslot ends: collected and graded as usual
    world.run(controller)
    assert world.instance(instance_id).state is S.GRADING


def test_a_lab_stopped_on_request_is_archived_when_its_timeslot_ends(world: World) -> None:
    instance_id = world.book(start_in=None, minutes=60)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    instance = world.instance(instance_id)
    instance.request_stop("instructor_request", world.ctx("instructor:ins"))
    world.store.save(instance)
    world.run(controller)
    assert world.instance(instance_id).state is S.STOPPED
    world.clock.advance(timedelta(minutes=60))
    world.run(controller)
    assert world.instance(instance_id).state is S.TERMINATED
    assert world.labs() == {} and instance_id not in world.worker().ledger


class FlakyCml(FusedCml):
    """Fails the first ``n`` calls of one method with a retryable error."""

    def __init__(self, inner: Any, method: str, n: int) -> None:
        super().__init__(inner, Fuse(None))
        self.method, self.remaining = method, n

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if name != self.method:
            return call

        async def flaky(*args: Any, **kwargs: Any) -> Any:
            if self.remaining > 0:
                self.remaining -= 1
                raise CmlUnavailable(args[0].worker_id, "simulated 503")
            return await call(*args, **kwargs)

        return flaky


def test_a_failed_attempt_is_retried_after_a_backoff(world: World) -> None:
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    cml = FlakyCml(world.cml, "start_lab", 1)
    controller = world.controller(cml=cml)  # type: ignore[arg-type]
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.INSTANTIATING and instance.awaiting_retry and instance.retry_count == 1
    assert world.labs() == {}  # the failed attempt's lab was deleted before the failure was recorded
    world.run(controller)
    assert world.instance(instance_id).awaiting_retry  # the backoff has not passed
    world.clock.advance(controller.settings.retry_delay)
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.READY and instance.instantiation_attempt == 2
    assert len(world.labs()) == 1


def test_a_lab_that_cannot_be_built_is_not_retried(world: World) -> None:
    instance_id = world.book(start_in=None)
    broken = "lab: {version: 0.3.0, title: broken}\nnodes: [}\n"
    uri = world.artifacts.put(f"instances/{instance_id}/lab.yaml", broken.encode())
    instance = world.instance(instance_id)
    instance.start_instantiation(1, world.ctx("system:scheduler"), lab_yaml_uri=uri)
    world.store.save(instance)
    world.run(world.controller())
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.termination_reason == "instantiation_failed"
    assert instance.retry_count == 0
    assert instance_id not in world.worker().ledger and world.labs() == {}


def test_the_controller_rewrites_ports_itself_when_no_prepared_yaml_is_given(world: World) -> None:
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id, prepare=False)
    cml = FusedCml(world.cml, Fuse(None))
    world.run(world.controller(cml=cml))  # type: ignore[arg-type]
    instance = world.instance(instance_id)
    assert instance.state is S.READY
    [(_, (lab_yaml, title))] = [call for call in cml.calls if call[0] == "import_lab"]
    assert title == instance_id
    assert "${" not in lab_yaml
    for port in instance.allocated_ports.values():
        assert str(port) in lab_yaml


def test_a_retried_attempt_reuses_the_lab_it_finds_by_title(world: World) -> None:
    """The import happened but the controller died before recording it: no second import."""
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    instance = world.instance(instance_id)
    endpoint = endpoint_for(world.worker_id, "10.0.0.10")
    assert isinstance(world.cml, SimulatedCml)
    text = world.artifacts.get(instance.lab_yaml_uri or "").decode()
    lab_id = asyncio.run(world.cml.import_lab(endpoint, text, instance_id))
    cml = FusedCml(world.cml, Fuse(None))
    world.run(world.controller(cml=cml))  # type: ignore[arg-type]
    assert [c for c, _ in cml.calls].count("import_lab") == 0
    assert world.instance(instance_id).cml_lab_id == lab_id and world.instance(instance_id).state is S.READY


def test_losing_the_worker_during_instantiation_ends_the_instance(world: World) -> None:
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    worker = world.worker()
    worker.terminate("worker_lost", world.ctx("system:workers"), force=True)
    world.store.save(worker)
    world.run(world.controller())
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.termination_reason == "worker_lost"
