"""Small builders for placement inputs: defaults that fit, overridden per test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from domain.ledger import Reservation, ReservationLedger
from domain.placement import PlacementRequest, WorkerCandidate
from domain.resources import Resources

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def ledger(
    cpu: float = 16, memory: float = 64, storage: float = 500, max_nodes: int = 20, ports: tuple[int, int] = (2000, 2099)
) -> ReservationLedger:
    return ReservationLedger(Resources(cpu, memory, storage), max_nodes, ports)


def reserve(
    on: ReservationLedger,
    instance_id: str,
    *,
    cpu: float = 0,
    memory: float = 0,
    storage: float = 0,
    nodes: int = 0,
    ports: dict[str, int] | None = None,
    start: datetime = T0,
    end: datetime = T0 + 2 * HOUR,
) -> ReservationLedger:
    on.add(Reservation(instance_id, Resources(cpu, memory, storage), nodes, ports or {}, start, end))
    return on


def request(**overrides: Any) -> PlacementRequest:
    fields: dict[str, Any] = {
        "instance_id": "instance-1",
        "requirements": Resources(2, 8, 20),
        "node_count": 5,
        "license_affinity": frozenset({"PERSONAL", "ENTERPRISE"}),
        "nested_virt": False,
        "ami_name_pattern": "CML-2.*",
        "ami_min_version": "2.8",
        "port_names": ("serial_1", "vnc_1"),
        "hold_start": T0,
        "hold_end": T0 + 2 * HOUR,
        "timeslot_start": T0 + timedelta(minutes=15),
        "instantiation_lead": timedelta(minutes=15),
    }
    fields.update(overrides)
    return PlacementRequest(**fields)


def candidate(worker_id: str = "worker-a", **overrides: Any) -> WorkerCandidate:
    fields: dict[str, Any] = {
        "worker_id": worker_id,
        "state": "RUNNING",
        "template_name": "personal-small",
        "license_type": "PERSONAL",
        "max_nodes": 20,
        "nested_virt": True,
        "ami_name": "CML-2.9.1",
        "ami_version": "2.9.1",
        "expected_ready_at": None,
        "ledger": None,
    }
    fields.update(overrides)
    if fields["ledger"] is None:
        fields["ledger"] = ledger(max_nodes=fields["max_nodes"])
    return WorkerCandidate(**fields)
