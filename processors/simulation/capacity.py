"""Workers and labs as vectors over every capacity dimension a worker's ledger checks
(SPEC §3.4: cpu, memory, storage, nodes, ports): what the lower bound and the offline
schedule pack.

A ``WorkerKind`` is one template as a bin; a ``LabKind`` what one lab needs of it and which
templates may hold it (licence affinity, nested virtualisation); a ``LabSpan`` one lab
holding its kind over ``[start, end)``. The AMI pattern is not checked: every simulated
template runs the same CML image, and a wider choice only lowers a bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DIMENSIONS = ("cpu_cores", "memory_gb", "storage_gb", "nodes", "ports")
_HOUR = timedelta(hours=1)
_EPS = 1e-9

Vector = tuple[float, ...]


@dataclass(frozen=True)
class WorkerKind:
    name: str
    capacity: Vector  # per DIMENSIONS
    license_type: str
    nested_virt: bool
    startup_hours: float
    restart_hours: float
    hourly_cost: float

    @classmethod
    def from_spec(cls, spec: Any) -> WorkerKind:
        """From a ``domain.worker_template.WorkerTemplateSpec``."""
        cap = spec.capacity
        return cls(spec.name, (float(cap.cpu_cores), float(cap.memory_gb), float(cap.storage_gb),
                               float(spec.node_limit), float(spec.port_range.size)),
                   str(getattr(spec.license_type, "value", spec.license_type)), bool(spec.nested_virt),
                   spec.startup_minutes / 60, spec.restart_minutes / 60, float(spec.hourly_cost))


@dataclass(frozen=True)
class LabKind:
    need: Vector  # per DIMENSIONS
    license_affinity: frozenset[str] = frozenset()  # empty: any licence
    nested_virt: bool = False

    @classmethod
    def of(cls, resources: Mapping[str, float], nodes: int, ports: int, requirements: Mapping[str, Any]) -> LabKind:
        return cls((float(resources.get("cpu_cores", 0)), float(resources.get("memory_gb", 0)),
                    float(resources.get("storage_gb", 0)), float(nodes), float(ports)),
                   frozenset(str(a) for a in requirements.get("license_affinity") or ()),
                   bool(requirements.get("nested_virt", False)))

    def eligible(self, worker: WorkerKind) -> bool:
        """May a worker of this kind hold the lab at all (alone, empty)?"""
        return ((not self.license_affinity or worker.license_type in self.license_affinity)
                and (worker.nested_virt or not self.nested_virt)
                and fits(self.need, worker.capacity))

    def copies_in(self, worker: WorkerKind) -> int:
        """How many of these labs one empty worker holds (0 when not eligible)."""
        if not self.eligible(worker):
            return 0
        return int(min((c + _EPS) // n for n, c in zip(self.need, worker.capacity) if n > 0) if any(self.need)
                   else 10**9)


@dataclass(frozen=True)
class LabSpan:
    lab_id: str
    kind: LabKind
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start) / _HOUR


def fits(need: Vector, room: Vector) -> bool:
    return all(n <= r + _EPS for n, r in zip(need, room))


def add(a: Vector, b: Vector) -> Vector:
    return tuple(x + y for x, y in zip(a, b))


def scaled(a: Vector, k: float) -> Vector:
    return tuple(x * k for x in a)
