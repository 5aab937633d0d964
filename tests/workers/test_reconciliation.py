"""Start-up reconciliation, both ways: VMs nobody owns, and workers whose VM is gone."""

from __future__ import annotations

import asyncio

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.eventstore.store import EventStore
from domain.cloud_reconciliation import CloudReconciliation
from domain.worker import WorkerState
from domain.worker_template import WorkerTemplateSpec
from processors.ports.cloud import CloudState, LaunchSpec
from processors.workers.controller import WorkerController
from tests.workers.conftest import advance, change, ctx, request_worker, tick

W = WorkerState


def reconciliations(store: EventStore) -> list[CloudReconciliation.CloudReconciled]:
    return [e.event for e in store.read_all(limit=10_000)
            if isinstance(e.event, CloudReconciliation.CloudReconciled)]


def restarted(store: EventStore, cloud: SimulatedCloud, clock: VirtualClock) -> WorkerController:
    """A fresh controller process over the same store and cloud."""
    return WorkerController(store, cloud, clock, provider_name="simulated")


def test_vms_tagged_as_ours_but_unknown_or_finished_are_terminated_and_recorded(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    spec = LaunchSpec.from_template(template)
    stray = asyncio.run(cloud.launch(spec, "Worker-00000000-0000-0000-0000-000000000000"))
    finished_id = request_worker(store, clock, template)
    leftover = asyncio.run(cloud.launch(spec, finished_id))
    change(store, finished_id, lambda w: w.terminate("admin", ctx(clock)))
    kept_id = request_worker(store, clock, template)
    controller = restarted(store, cloud, clock)
    report = tick(controller)

    assert asyncio.run(cloud.describe(stray.cloud_id)).state is CloudState.SHUTTING_DOWN
    assert asyncio.run(cloud.describe(leftover.cloud_id)).state is CloudState.SHUTTING_DOWN
    [recorded] = reconciliations(store)
    assert recorded.provider == "simulated"
    assert {(o["cloud_instance_id"], o["reason"]) for o in recorded.orphans_terminated} == {
        (stray.cloud_id, "unknown worker"), (leftover.cloud_id, "worker is TERMINATED"),
    }
    assert recorded.workers_lost == []
    assert report.reconciliation["orphans_terminated"] == recorded.orphans_terminated
    # The PENDING worker was launched normally in the same tick.
    assert store.get(kept_id).state is W.PROVISIONING


def test_known_workers_whose_vm_is_gone_are_failed_or_terminated(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    first = restarted(store, cloud, clock)
    running_id = request_worker(store, clock, template)
    stopped_id = request_worker(store, clock, template)
    tick(first)
    advance(clock, template.startup_minutes)
    tick(first)
    change(store, stopped_id, lambda w: w.stop("admin", ctx(clock)))
    tick(first)
    advance(clock, 2)
    tick(first)
    booting_id = request_worker(store, clock, template)
    tick(first)
    assert [store.get(i).state for i in (running_id, stopped_id, booting_id)] == [W.RUNNING, W.STOPPED,
                                                                                 W.PROVISIONING]
    # While the controller is down, every VM is terminated outside LRM.
    for worker_id in (running_id, stopped_id, booting_id):
        asyncio.run(cloud.terminate(store.get(worker_id).cloud_instance_id))
    advance(clock, 5)

    tick(restarted(store, cloud, clock))

    assert store.get(running_id).state is W.TERMINATED
    assert store.get(running_id).termination_reason == "worker_lost"
    assert store.get(stopped_id).state is W.TERMINATED
    booting = store.get(booting_id)
    assert booting.state is W.FAILED and booting.last_error.startswith("reconciliation: VM")
    [recorded] = reconciliations(store)
    assert {(lost["worker_id"], lost["outcome"]) for lost in recorded.workers_lost} == {
        (running_id, "TERMINATED"), (stopped_id, "TERMINATED"), (booting_id, "FAILED"),
    }


def test_nothing_to_reconcile_records_nothing(
    store: EventStore, cloud: SimulatedCloud, clock: VirtualClock, template: WorkerTemplateSpec,
) -> None:
    first = restarted(store, cloud, clock)
    request_worker(store, clock, template)
    tick(first)
    advance(clock, template.startup_minutes)
    tick(first)
    tick(restarted(store, cloud, clock))
    assert reconciliations(store) == []
