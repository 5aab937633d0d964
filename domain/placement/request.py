"""What one instance asks of a worker: the placement pipeline's first input.

A frozen value object built from the instance and its pinned definition version, but
independent of both aggregates, so a recorded request can be decided again (replay,
what-if) without loading anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.resources import Resources


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One instance's demand over its hold window ``[hold_start, hold_end)``.

    ``timeslot_start`` is ``None`` for an ASAP request; then ``hold_start`` is "now".
    ``license_affinity`` empty means "any license type".
    """

    instance_id: str
    requirements: Resources
    node_count: int
    license_affinity: frozenset[str]
    nested_virt: bool
    ami_name_pattern: str | None
    ami_min_version: str | None
    port_names: tuple[str, ...]
    hold_start: datetime
    hold_end: datetime
    timeslot_start: datetime | None
    instantiation_lead: timedelta = timedelta(minutes=15)
    # Derived once here, because every filter of every candidate asks for them.
    ready_by: datetime = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.hold_end <= self.hold_start:
            raise ValueError("hold window must not be empty: hold_end must be after hold_start")
        if self.node_count < 0:
            raise ValueError("node_count must not be negative")
        if not isinstance(self.license_affinity, frozenset):
            object.__setattr__(self, "license_affinity", frozenset(self.license_affinity))
        if not isinstance(self.port_names, tuple):
            object.__setattr__(self, "port_names", tuple(self.port_names))
        object.__setattr__(self, "ready_by", self._ready_by())

    def _ready_by(self) -> datetime:
        # A worker must be able to take the lab when instantiation starts: at
        # timeslot_start - lead for a booking, at the start of the hold ("now") for ASAP
        # (a timeslot already in the past is ASAP too, hence the max).
        if self.timeslot_start is None:
            return self.hold_start
        return max(self.timeslot_start - self.instantiation_lead, self.hold_start)

    @property
    def port_count(self) -> int:
        return len(self.port_names)

    @property
    def is_asap(self) -> bool:
        return self.timeslot_start is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, so a decision's inputs can be recorded and replayed."""
        return {
            "instance_id": self.instance_id,
            "requirements": self.requirements.to_dict(),
            "node_count": self.node_count,
            "license_affinity": sorted(self.license_affinity),
            "nested_virt": self.nested_virt,
            "ami_name_pattern": self.ami_name_pattern,
            "ami_min_version": self.ami_min_version,
            "port_names": list(self.port_names),
            "hold_start": self.hold_start.isoformat(),
            "hold_end": self.hold_end.isoformat(),
            "timeslot_start": self.timeslot_start.isoformat() if self.timeslot_start else None,
            "instantiation_lead_seconds": self.instantiation_lead.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlacementRequest:
        timeslot_start = data.get("timeslot_start")
        return cls(
            instance_id=data["instance_id"],
            requirements=Resources.from_dict(data["requirements"]),
            node_count=int(data["node_count"]),
            license_affinity=frozenset(data["license_affinity"]),
            nested_virt=bool(data["nested_virt"]),
            ami_name_pattern=data.get("ami_name_pattern"),
            ami_min_version=data.get("ami_min_version"),
            port_names=tuple(data["port_names"]),
            hold_start=datetime.fromisoformat(data["hold_start"]),
            hold_end=datetime.fromisoformat(data["hold_end"]),
            timeslot_start=datetime.fromisoformat(timeslot_start) if timeslot_start else None,
            instantiation_lead=timedelta(seconds=float(data["instantiation_lead_seconds"])),
        )

