"""The lab reconciler: removes only CML labs that no instance owns, after the grace period;
finds instances whose CML lab vanished."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.cml.settings import CmlSettings, endpoint_for_worker
from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from api.container import Container
from domain.instance import LabletInstance
from domain.lab_reconciliation import LabReconciliation
from tests.api.test_instances_support import (
    ADMIN,
    API,
    instance_client,
    place,
    request_instance,
    running_worker,
    system_ctx,
)
from tests.api.test_templates_support import sample_lab_yaml

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        yield pair


def instant_cml() -> SimulatedCml:
    return SimulatedCml(SimulatedCmlSettings(import_seconds_per_node=0, boot_seconds_per_node=0,
                                             stop_seconds_per_node=0, wipe_seconds_per_node=0))


def lab_up(container: Container, cml: SimulatedCml, endpoint, instance_id: str) -> str:  # noqa: ANN001
    """Play the instance controller for real on the simulated CML: import, record, ready."""
    lab_id = asyncio.run(cml.import_lab(endpoint, sample_lab_yaml(), instance_id))
    ctx = system_ctx(container, "system:instance-controller")
    instance: LabletInstance = container.store.get(instance_id)
    instance.start_instantiation(1, ctx)
    instance.record_lab_imported(lab_id, ctx)
    instance.record_lab_started(ctx)
    instance.mark_ready({"login_url": "https://cml.example/lab"}, ctx)
    container.store.save(instance)
    return lab_id


def test_only_unowned_labs_are_removed_and_only_after_the_grace_period(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    cml = instant_cml()
    endpoint = endpoint_for_worker(CmlSettings(), worker_id, "10.0.0.10")
    instance_id = request_instance(client, "user", duration_minutes=60)["id"]
    place(container, instance_id, worker_id)
    owned = lab_up(container, cml, endpoint, instance_id)
    # an import that crashed before it was recorded: titled with an instance id, still owned
    pending = request_instance(client, "user", duration_minutes=60)["id"]
    place(container, pending, worker_id)
    unrecorded = asyncio.run(cml.import_lab(endpoint, sample_lab_yaml(), pending))
    by_hand = asyncio.run(cml.import_lab(endpoint, sample_lab_yaml(), "someone's test lab"))
    container.wait_for_position(container.store.max_position(), 5)
    reconciler = container._lab_reconciler(cml, lambda w, ip: endpoint)
    start = container.clock.now()

    report = asyncio.run(reconciler.reconcile(start))
    assert report.orphans == {worker_id: [by_hand]} and report.removed == []
    assert set(asyncio.run(cml.list_labs(endpoint))) == {owned, unrecorded, by_hand}

    report = asyncio.run(reconciler.reconcile(start + timedelta(minutes=29)))
    assert report.removed == [] and by_hand in asyncio.run(cml.list_labs(endpoint))

    report = asyncio.run(reconciler.reconcile(start + timedelta(minutes=30)))
    assert report.removed == [(worker_id, by_hand)]
    assert set(asyncio.run(cml.list_labs(endpoint))) == {owned, unrecorded}
    record: LabReconciliation = container.store.get(LabReconciliation.stream_id_for(worker_id))
    assert record.orphans == {}
    removed = [e.event for e in container.store.read_stream(record.id) if e.event_name == "OrphanLabRemoved"]
    assert len(removed) == 1 and removed[0].lab_id == by_hand and "no instance owns it" in removed[0].reason
    assert removed[0].first_seen == start
    # nothing more to do: a further pass writes nothing
    before = container.store.max_position()
    asyncio.run(reconciler.reconcile(start + timedelta(minutes=40)))
    assert container.store.max_position() == before


def test_an_instance_whose_lab_vanished_is_reported_once_on_its_timeline(app: Client) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    cml = instant_cml()
    endpoint = endpoint_for_worker(CmlSettings(), worker_id, "10.0.0.10")
    instance_id = request_instance(client, "user", duration_minutes=60)["id"]
    place(container, instance_id, worker_id)
    lab_id = lab_up(container, cml, endpoint, instance_id)
    asyncio.run(cml.delete_lab(endpoint, lab_id))  # removed by hand on CML
    container.wait_for_position(container.store.max_position(), 5)
    reconciler = container._lab_reconciler(cml, lambda w, ip: endpoint)
    report = asyncio.run(reconciler.reconcile(container.clock.now()))
    assert report.vanished == [(instance_id, lab_id)]
    asyncio.run(reconciler.reconcile(container.clock.now() + timedelta(minutes=1)))
    events = [e for e in container.store.read_all(after=0, limit=10_000) if e.event_name == "InstanceLabVanished"]
    assert len(events) == 1
    timeline = client.get(f"{API}/instances/{instance_id}/timeline",
                          params={"min_position": container.store.max_position()}, headers=ADMIN).json()["items"]
    assert "InstanceLabVanished" in [item["type"] for item in timeline]
    shown = client.get(f"{API}/reconciliation", headers=ADMIN).json()
    assert shown["workers"][0]["vanished"] == [{"instance_id": instance_id, "lab_id": lab_id}]
