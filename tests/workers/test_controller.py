"""Worker controller against the simulated cloud on a virtual clock: boot, timeouts, stop/restart, clean-up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.eventstore.store import EventStore
from domain.worker import WorkerState
from domain.worker_template import WorkerTemplateSpec
from processors.ports.cloud import CloudState, LaunchSpec
from processors.workers.controller import WorkerController
from tests.workers.conftest import advance, change, ctx, request_worker, tick

W = WorkerState


def test_boot_records_cloud_ids_then_ready_with_ip(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, controller: WorkerController,
    template: WorkerTemplateSpec,
) -> None:
    worker_id = request_worker(store, clock, template)
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.PROVISIONING
    vm = asyncio.run(cloud.describe(worker.cloud_instance_id))
    assert vm.worker_id == worker_id and vm.state is CloudState.PENDING
    assert worker.expected_ready_at == clock.now() + timedelta(minutes=template.startup_minutes)

    advance(clock, template.startup_minutes - 1)
    tick(controller)
    assert store.get(worker_id).state is W.PROVISIONING  # still booting: nothing recorded

    advance(clock, 1)
    report = tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.RUNNING
    assert worker.ip == asyncio.run(cloud.describe(worker.cloud_instance_id)).private_ip
    assert report.steps == [(worker_id, f"ready at {worker.ip}")]
    # Nothing more to do: a further tick records nothing.
    version = worker.version
    tick(controller)
    assert store.get(worker_id).version == version


def test_boot_longer_than_twice_the_startup_fails_and_terminates_the_vm(
    store: EventStore, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    slow = SimulatedCloud(clock, jitter=0.0, time_scale=0.4)  # a 20-minute boot takes 50
    controller = WorkerController(store, slow, clock)
    worker_id = request_worker(store, clock, template)
    tick(controller)
    advance(clock, 2 * template.startup_minutes - 1)
    tick(controller)
    assert store.get(worker_id).state is W.PROVISIONING
    advance(clock, 1)
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.FAILED
    assert worker.last_error.startswith("boot timeout: not ready 40 min after it began (expected 20 min")
    assert asyncio.run(slow.describe(worker.cloud_instance_id)).state is CloudState.SHUTTING_DOWN


def test_a_vm_that_fails_to_boot_fails_the_worker_with_the_cloud_reason(
    store: EventStore, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    failing = SimulatedCloud(clock, jitter=0.0, failure_probability=1.0)
    controller = WorkerController(store, failing, clock)
    worker_id = request_worker(store, clock, template)
    tick(controller)
    advance(clock, template.startup_minutes)
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.FAILED
    assert "simulated boot failure" in worker.last_error


def test_stop_then_restart_through_the_cloud(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, controller: WorkerController,
    template: WorkerTemplateSpec,
) -> None:
    worker_id = running_worker(store, cloud, clock, controller, template)
    cloud_id = store.get(worker_id).cloud_instance_id

    change(store, worker_id, lambda w: w.stop("admin", ctx(clock)))
    tick(controller)
    assert asyncio.run(cloud.describe(cloud_id)).state is CloudState.STOPPING
    assert store.get(worker_id).state is W.STOPPING
    advance(clock, 2)
    tick(controller)
    assert store.get(worker_id).state is W.STOPPED

    change(store, worker_id, lambda w: w.request_restart(ctx(clock), reason="test"))
    tick(controller)
    assert asyncio.run(cloud.describe(cloud_id)).state is CloudState.PENDING  # same VM, started again
    advance(clock, template.restart_minutes)
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.RUNNING and worker.cloud_instance_id == cloud_id
    assert len(asyncio.run(cloud.list_managed())) == 1


def test_restart_boot_timeout_counts_from_the_restart_time(
    store: EventStore, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    slow = SimulatedCloud(clock, jitter=0.0, time_scale=0.1)  # restart of 5 min takes 50
    controller = WorkerController(store, slow, clock)
    worker_id = request_worker(store, clock, template)
    tick(controller)
    advance(clock, template.startup_minutes * 10)
    tick(controller)
    change(store, worker_id, lambda w: w.stop("admin", ctx(clock)))
    tick(controller)
    advance(clock, 20)
    tick(controller)
    assert store.get(worker_id).state is W.STOPPED
    change(store, worker_id, lambda w: w.request_restart(ctx(clock), reason="test"))
    tick(controller)
    advance(clock, 2 * template.restart_minutes)
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.FAILED
    assert "expected 5 min, limit 10 min" in worker.last_error


def test_terminated_worker_loses_its_vm(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, controller: WorkerController,
    template: WorkerTemplateSpec,
) -> None:
    worker_id = running_worker(store, cloud, clock, controller, template)
    cloud_id = store.get(worker_id).cloud_instance_id
    change(store, worker_id, lambda w: w.terminate("admin", ctx(clock)))
    tick(controller)
    assert asyncio.run(cloud.describe(cloud_id)).state is CloudState.SHUTTING_DOWN
    assert controller.replica.is_retired(worker_id)


def test_a_running_worker_whose_vm_disappears_is_lost(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, controller: WorkerController,
    template: WorkerTemplateSpec,
) -> None:
    worker_id = running_worker(store, cloud, clock, controller, template)
    asyncio.run(cloud.terminate(store.get(worker_id).cloud_instance_id))  # behind our back
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.TERMINATED and worker.termination_reason == "worker_lost"


def test_launch_refused_for_good_fails_at_once(
    store: EventStore, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    no_images = SimulatedCloud(clock, jitter=0.0, images=[])
    controller = WorkerController(store, no_images, clock)
    worker_id = request_worker(store, clock, template)
    tick(controller)
    worker = store.get(worker_id)
    assert worker.state is W.FAILED and worker.last_error.startswith("launch refused: AmiNotFound")


def test_capacity_errors_are_retried_with_backoff_then_fail_after_the_boot_timeout(
    store: EventStore, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    full = SimulatedCloud(clock, jitter=0.0, capacity=0)
    controller = WorkerController(store, full, clock)
    worker_id = request_worker(store, clock, template)
    attempts = []
    for _ in range(60):  # one tick a minute for an hour
        report = tick(controller)
        attempts += [e for _w, e in report.errors if "CloudCapacityError" in e]
        advance(clock, 1)
    worker = store.get(worker_id)
    assert worker.state is W.FAILED
    assert worker.last_error.startswith("not launched within 40 min of the decision")
    # Backoff 10 s, 20 s, 40 s, ... capped at 5 min: far fewer attempts than ticks.
    assert 5 <= len(attempts) < 20


def test_launch_is_adopted_after_a_crash_between_launch_and_record(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, controller: WorkerController,
    template: WorkerTemplateSpec,
) -> None:
    worker_id = request_worker(store, clock, template)
    vm = asyncio.run(cloud.launch(LaunchSpec.from_template(template), worker_id))  # the "crashed" attempt
    tick(controller)
    assert store.get(worker_id).cloud_instance_id == vm.cloud_id
    assert len(asyncio.run(cloud.list_managed())) == 1


def running_worker(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, controller: WorkerController,
    template: WorkerTemplateSpec,
) -> str:
    worker_id = request_worker(store, clock, template)
    tick(controller)
    advance(clock, template.startup_minutes)
    tick(controller)
    assert store.get(worker_id).state is W.RUNNING
    return worker_id
