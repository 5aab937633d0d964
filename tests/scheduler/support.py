"""Builders for scheduler tests: templates, workers in a state, instances, ledger checks."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from domain.context import CommandContext
from domain.instance import InstanceRequirements, InstanceState, LabletInstance
from domain.timeslot import Timeslot
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplateSpec

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
ADMIN = CommandContext(at=T0, actor="admin:test")


def template(
    name: str = "personal", *, license_type: str = "PERSONAL", cpu: float = 8, memory: float = 32,
    storage: float = 100, max_nodes: int = 20, ports: tuple[int, int] = (2000, 2009), drain_hours: float = 1,
) -> WorkerTemplateSpec:
    return WorkerTemplateSpec.from_dict({
        "name": name, "instance_type": "m5zn.metal",
        "capacity": {"cpu_cores": cpu, "memory_gb": memory, "storage_gb": storage},
        "license_type": license_type, "max_nodes": max_nodes, "ami_pattern": "CML-2.9.*",
        "ami_version": "2.9.1", "region": "us-east-1",
        "port_range": {"start": ports[0], "end": ports[1]}, "hourly_cost": 4.0,
        "drain_timeout_hours": drain_hours,
    })


def new_worker(spec: WorkerTemplateSpec | None = None, *, state: WorkerState = WorkerState.RUNNING,
               at: datetime = T0) -> Worker:
    ctx = CommandContext(at=at, actor="admin:test")
    worker = Worker.request(spec or template(), ctx, expected_ready_at=at)
    if state is WorkerState.PENDING:
        return worker
    worker.start_provisioning(f"i-{worker.id[-8:]}", ctx, expected_ready_at=at)
    if state is WorkerState.PROVISIONING:
        return worker
    worker.mark_ready("10.0.0.1", ctx)
    if state is WorkerState.DRAINING:
        worker.start_draining("test", ctx)
    assert worker.state is state, worker.state
    return worker


def requirements(cpu: float = 2, memory: float = 8, storage: float = 10, nodes: int = 2,
                 ports: tuple[str, ...] = ("serial_1", "vnc_1"), **extra: Any) -> InstanceRequirements:
    return InstanceRequirements(cpu_cores=cpu, memory_gb=memory, storage_gb=storage, node_count=nodes,
                                port_names=ports, nested_virt=False, **extra)


def new_instance(start: datetime | None, minutes: int = 60, *, req: InstanceRequirements | None = None,
                 at: datetime = T0, owner: str = "alice", definition: str = "ccna-lab",
                 instance_id: str | None = None) -> LabletInstance:
    end = (start or at) + timedelta(minutes=minutes)
    return LabletInstance.request_with(
        definition_name=definition, definition_version="1.0.0", requirements=req or requirements(),
        grading_enabled=False, owner_id=owner, timeslot=Timeslot(start, end),
        ctx=CommandContext(at=at, actor=f"user:{owner}"), instance_id=instance_id,
    )


def check_invariants(store: Any, worker_ids: list[str], instance_ids: list[str]) -> dict[str, LabletInstance]:
    """What must hold after any run: no instant overbooked, no port shared by overlapping
    holds, each SCHEDULED instance's worker holds its reservation, ledgers match instances."""
    workers = {w: store.get(w) for w in worker_ids}
    instances = {i: store.get(i) for i in instance_ids}
    holders: dict[str, list[str]] = defaultdict(list)
    for worker in workers.values():
        ledger = worker.ledger
        reservations = ledger.reservations()
        points = sorted({r.hold_start for r in reservations})
        for t in points:  # usage only rises at a start, so the starts are where peaks are
            active = [r for r in reservations if r.hold_start <= t < r.hold_end]
            assert sum(r.resources.cpu_cores for r in active) <= ledger.capacity.cpu_cores + 1e-9, (worker.id, t)
            assert sum(r.resources.memory_gb for r in active) <= ledger.capacity.memory_gb + 1e-9, (worker.id, t)
            assert sum(r.resources.storage_gb for r in active) <= ledger.capacity.storage_gb + 1e-9, (worker.id, t)
            assert sum(r.nodes for r in active) <= ledger.max_nodes, (worker.id, t)
            ports = [p for r in active for p in r.ports.values()]
            assert len(ports) == len(set(ports)), (worker.id, t, ports)
        for r in reservations:
            holders[r.instance_id].append(worker.id)
    for instance in instances.values():
        held = holders.get(instance.id, [])
        if instance.state is InstanceState.SCHEDULED:
            assert held == [instance.worker_id], (instance.id, held, instance.worker_id)
            reservation = workers[instance.worker_id].ledger.get(instance.id)
            assert reservation.ports == instance.allocated_ports
            assert (reservation.hold_start, reservation.hold_end) == (instance.hold_start, instance.hold_end)
        scheduled = [e for e in store.read_stream(instance.id) if type(e.event).__name__ == "InstanceScheduled"]
        requeued = [e for e in store.read_stream(instance.id) if type(e.event).__name__ == "InstanceRequeued"]
        assert len(scheduled) <= 1 + len(requeued), instance.id  # scheduled at most once per stay in the queue
        if instance.state is InstanceState.PENDING or not instance.holds_capacity:
            assert held == [], (instance.id, instance.state, held)
    return instances
