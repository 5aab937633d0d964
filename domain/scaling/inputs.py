"""What the autoscaler decides from: frozen value objects, so a decision can be recorded and replayed.

The autoscaler reads the reservation ledger and the queue, not just the present (SPEC §5).
Everything here is a snapshot taken by the caller at ``now``; the planner never reads a
clock and never looks anything up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from domain.errors import InvalidInput
from domain.ledger import Reservation
from domain.resources import Resources
from domain.scaling.timeline import PeakCache
from domain.worker import WorkerState  # one life cycle: the autoscaler sees the aggregate's states


# Capacity that exists or is on its way (counted from its expected ready time).
BOOTING_STATES = frozenset({WorkerState.PENDING, WorkerState.PROVISIONING})
GONE_STATES = frozenset({WorkerState.TERMINATED, WorkerState.FAILED})


def _aware(name: str, value: datetime | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(name, "must be a timezone-aware datetime")


@dataclass(frozen=True)
class FleetWorker:
    """One worker as the autoscaler sees it.

    ``active_instance_ids`` are the instances on it in READY..GRADING or STOPPED that
    still hold the worker (a lab can outlive its hold window); together with any
    reservation whose hold covers ``now`` they make the worker untouchable (except by
    drain timeout). ``state_since`` is when it entered ``state`` (drain timeout, stopped
    retention). ``expected_ready_at`` matters for PENDING/PROVISIONING workers.
    ``drain_deadline`` is set only for an admin's drain with a timeout: the one case in
    which labs still on the worker are ended (``drain_timeout``, SPEC §5).
    """

    worker_id: str
    template_name: str
    state: WorkerState
    expected_ready_at: datetime | None
    state_since: datetime
    reservations: tuple[Reservation, ...]
    active_instance_ids: tuple[str, ...]
    capacity: Resources
    max_nodes: int
    license_type: str
    drain_deadline: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", WorkerState(self.state))
        object.__setattr__(self, "license_type", str(self.license_type))
        object.__setattr__(self, "reservations", tuple(sorted(self.reservations, key=lambda r: (r.hold_start, r.instance_id))))
        object.__setattr__(self, "active_instance_ids", tuple(sorted(self.active_instance_ids)))
        _aware("state_since", self.state_since)
        _aware("expected_ready_at", self.expected_ready_at, optional=True)
        _aware("drain_deadline", self.drain_deadline, optional=True)

    # -- derived once per snapshot of the worker, shared by every plan that sees it --------
    # (FleetWorker objects are kept by the autoscaler's view until the worker changes; the
    # values below are pure functions of the fields, so sharing them changes no decision.)
    @cached_property
    def spans(self) -> tuple[tuple[str, float, float, tuple[float, float, float, float]], ...]:
        """Every reservation as (instance id, start, end, usage) in epoch seconds, by start."""
        return tuple(
            (r.instance_id, r.hold_start.timestamp(), r.hold_end.timestamp(),
             (r.resources.cpu_cores, r.resources.memory_gb, r.resources.storage_gb, float(r.nodes)))
            for r in self.reservations
        )

    @cached_property
    def hold_ends(self) -> tuple[datetime, ...]:
        """Every reservation's end, sorted (how many have not ended: a bisection)."""
        return tuple(sorted(r.hold_end for r in self.reservations))

    @cached_property
    def peak_cache(self) -> PeakCache:
        """Window peaks of timelines of these reservations, filled by the planner."""
        return PeakCache()

    @cached_property
    def _moments(self) -> dict[timedelta, tuple[datetime, ...]]:
        return {}

    def hold_moments(self, grace_period: timedelta) -> tuple[datetime, ...]:
        """Sorted instants at which a plan may change for this worker's holds: each hold's
        start less ``grace_period`` and its end (``next_decision_at``)."""
        cached = self._moments.get(grace_period)
        if cached is None:
            cached = tuple(sorted(t for r in self.reservations for t in (r.hold_start - grace_period, r.hold_end)))
            self._moments[grace_period] = cached
        return cached

    def holds_active_lab(self, now: datetime) -> bool:
        """A lab lives on it: an active instance, or a hold that covers ``now``."""
        return bool(self.active_instance_ids) or any(r.is_active_at(now) for r in self.reservations)

    def next_reservation_start(self, now: datetime) -> datetime | None:
        return min((r.hold_start for r in self.reservations if r.hold_end > now), default=None)

    def last_hold_end(self) -> datetime | None:
        return max((r.hold_end for r in self.reservations), default=None)

    def has_reservation_within(self, start: datetime, end: datetime) -> bool:
        return any(r.overlaps(start, end) for r in self.reservations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "template_name": self.template_name,
            "state": self.state.value,
            "expected_ready_at": self.expected_ready_at.isoformat() if self.expected_ready_at else None,
            "state_since": self.state_since.isoformat(),
            "reservations": [r.to_dict() for r in self.reservations],
            "active_instance_ids": list(self.active_instance_ids),
            "capacity": self.capacity.to_dict(),
            "max_nodes": self.max_nodes,
            "license_type": self.license_type,
            "drain_deadline": self.drain_deadline.isoformat() if self.drain_deadline else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FleetWorker:
        ready = data.get("expected_ready_at")
        deadline = data.get("drain_deadline")
        return cls(
            worker_id=data["worker_id"],
            template_name=data["template_name"],
            state=WorkerState(data["state"]),
            expected_ready_at=datetime.fromisoformat(ready) if ready else None,
            state_since=datetime.fromisoformat(data["state_since"]),
            reservations=tuple(Reservation.from_dict(r) for r in data.get("reservations", [])),
            active_instance_ids=tuple(data.get("active_instance_ids", [])),
            capacity=Resources.from_dict(dict(data["capacity"])),
            max_nodes=int(data["max_nodes"]),
            license_type=str(data["license_type"]),
            drain_deadline=datetime.fromisoformat(deadline) if deadline else None,
        )


@dataclass(frozen=True)
class TemplateOffer:
    """A worker template the autoscaler may launch (or restart a stopped worker of)."""

    name: str
    capacity: Resources
    max_nodes: int
    license_type: str
    startup_minutes: int = 20
    restart_minutes: int = 5
    hourly_cost: float = 0.0
    drain_timeout_hours: float = 4.0
    nested_virt: bool = True
    ami_pattern: str = "*"

    def __post_init__(self) -> None:
        object.__setattr__(self, "license_type", str(self.license_type))
        if self.max_nodes < 0:
            raise InvalidInput("max_nodes", "must not be negative")
        if self.startup_minutes < 0 or self.restart_minutes < 0:
            raise InvalidInput("startup_minutes", "boot times must not be negative")

    @cached_property
    def peak_cache(self) -> PeakCache:
        """Window peaks of timelines of a new worker of this template, filled by the planner
        (the autoscaler's view keeps the same offers from plan to plan)."""
        return PeakCache()

    @property
    def startup(self) -> timedelta:
        return timedelta(minutes=self.startup_minutes)

    @property
    def restart(self) -> timedelta:
        return timedelta(minutes=self.restart_minutes)

    @property
    def drain_timeout(self) -> timedelta:
        return timedelta(hours=self.drain_timeout_hours)

    @classmethod
    def from_spec(cls, spec: Any) -> TemplateOffer:
        """From a ``domain.worker_template.WorkerTemplateSpec`` (duck-typed to keep this module small)."""
        return cls(
            name=spec.name,
            capacity=spec.capacity,
            max_nodes=spec.node_limit if hasattr(spec, "node_limit") else spec.max_nodes,
            license_type=str(spec.license_type),
            startup_minutes=spec.startup_minutes,
            restart_minutes=spec.restart_minutes,
            hourly_cost=spec.hourly_cost,
            drain_timeout_hours=spec.drain_timeout_hours,
            nested_virt=spec.nested_virt,
            ami_pattern=spec.ami_pattern,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capacity": self.capacity.to_dict(),
            "max_nodes": self.max_nodes,
            "license_type": self.license_type,
            "startup_minutes": self.startup_minutes,
            "restart_minutes": self.restart_minutes,
            "hourly_cost": self.hourly_cost,
            "drain_timeout_hours": self.drain_timeout_hours,
            "nested_virt": self.nested_virt,
            "ami_pattern": self.ami_pattern,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TemplateOffer:
        values = dict(data)
        values["capacity"] = Resources.from_dict(dict(values["capacity"]))
        return cls(**values)


@dataclass(frozen=True)
class DemandItem:
    """One instance's demand over its hold ``[hold_start, hold_end)``.

    ``queued`` is True for a PENDING (unplaced) instance; False for one already booked on
    a worker (its reservation is in that worker's ledger; it is listed here so the
    summary and the baselines see the whole demand). ``timeslot_start`` is None for ASAP.
    ``license_affinity`` empty means any licence. ``movable``: a booked instance whose lab
    has not started instantiating (SCHEDULED): consolidation may move its reservation.
    """

    instance_id: str
    requirements: Resources
    node_count: int
    license_affinity: tuple[str, ...]
    hold_start: datetime
    hold_end: datetime
    timeslot_start: datetime | None
    queued: bool = True
    nested_virt: bool = False
    movable: bool = False  # booked and not yet instantiating: consolidation may move it

    def __post_init__(self) -> None:
        object.__setattr__(self, "license_affinity", tuple(sorted(str(a) for a in self.license_affinity)))
        _aware("hold_start", self.hold_start)
        _aware("hold_end", self.hold_end)
        _aware("timeslot_start", self.timeslot_start, optional=True)
        if self.hold_end <= self.hold_start:
            raise InvalidInput("hold_end", "must be after hold_start")
        if self.node_count < 0:
            raise InvalidInput("node_count", "must not be negative")

    def needed_by(self, instantiation_lead: timedelta) -> datetime:
        """When a worker must be able to take it: instantiation start (as the scheduler's ``ready_by``)."""
        if self.timeslot_start is None:
            return self.hold_start
        return max(self.timeslot_start - instantiation_lead, self.hold_start)

    def accepts_license(self, license_type: str) -> bool:
        return not self.license_affinity or license_type in self.license_affinity

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "requirements": self.requirements.to_dict(),
            "node_count": self.node_count,
            "license_affinity": list(self.license_affinity),
            "hold_start": self.hold_start.isoformat(),
            "hold_end": self.hold_end.isoformat(),
            "timeslot_start": self.timeslot_start.isoformat() if self.timeslot_start else None,
            "queued": self.queued,
            "nested_virt": self.nested_virt,
            "movable": self.movable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DemandItem:
        timeslot = data.get("timeslot_start")
        return cls(
            instance_id=data["instance_id"],
            requirements=Resources.from_dict(dict(data["requirements"])),
            node_count=int(data["node_count"]),
            license_affinity=tuple(data.get("license_affinity", ())),
            hold_start=datetime.fromisoformat(data["hold_start"]),
            hold_end=datetime.fromisoformat(data["hold_end"]),
            timeslot_start=datetime.fromisoformat(timeslot) if timeslot else None,
            queued=bool(data.get("queued", True)),
            nested_virt=bool(data.get("nested_virt", False)),
            movable=bool(data.get("movable", False)),
        )


@dataclass(frozen=True)
class ScalingSettings:
    """Knobs of the autoscaler (SPEC §4 hold window, §5 autoscaling).

    ``horizon``: queued demand needed later than ``now + horizon`` is ignored for now.
    ``scale_up_margin``: extra lead on top of a worker's boot time, so a boot that runs a
    little long still makes the need (a launch is due at ``needed_by - boot - margin``).
    ``stop_between_reservations``: an idle worker whose next reservation is further away
    than the break-even is stopped and restarted in time for it (on by default, SPEC §5);
    off = it stays up idle until then (the baseline to compare with).
    ``stop_min_saving``: the break-even: a stop is made only when the worker would be
    down (unbilled) at least this long before its planned restart.
    ``replacement_lead``: a boot is timed so that, if it fails, one replacement boot
    (a restart of a spare stopped worker when one exists, else a launch) is still ready
    ``scale_up_margin`` before the first lab's start (SPEC §5 "boot failures").
    ``hedge_boots``: a boot whose slack before its first start is shorter than one
    replacement boot gets a spare worker of its template booting in parallel
    (``domain.scaling.hedging``).
    ``allow_cancel_drain``: new demand may take back a DRAINING worker (CancelDrain)
    before anything is restarted or launched.
    ``consolidate`` / ``consolidation_min_saving``: re-pack movable future reservations
    onto fewer workers when a move set saves at least this many worker-hours.
    """

    horizon: timedelta = timedelta(hours=24)
    grace_period: timedelta = timedelta(minutes=30)
    instantiation_lead: timedelta = timedelta(minutes=15)
    min_warm: Mapping[str, int] = field(default_factory=dict)
    stopped_retention: timedelta = timedelta(hours=24)
    scale_up_margin: timedelta = timedelta(minutes=5)
    stop_between_reservations: bool = True
    allow_cancel_drain: bool = True
    stop_min_saving: timedelta = timedelta(minutes=15)
    replacement_lead: bool = True
    consolidate: bool = True
    consolidation_min_saving: timedelta = timedelta(minutes=15)
    hedge_boots: bool = True

    def __post_init__(self) -> None:
        for name in ("horizon", "grace_period", "instantiation_lead", "stopped_retention", "scale_up_margin",
                     "stop_min_saving", "consolidation_min_saving"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise InvalidInput(name, "must be a non-negative duration")
        warm = dict(self.min_warm)
        if any(not isinstance(v, int) or v < 0 for v in warm.values()):
            raise InvalidInput("min_warm", "counts must be non-negative integers")
        object.__setattr__(self, "min_warm", MappingProxyType(dict(sorted(warm.items()))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScalingSettings):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items(), key=lambda kv: kv[0])))

    def warm_minimum(self, template_name: str) -> int:
        return int(self.min_warm.get(template_name, 0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon_seconds": self.horizon.total_seconds(),
            "grace_period_seconds": self.grace_period.total_seconds(),
            "instantiation_lead_seconds": self.instantiation_lead.total_seconds(),
            "min_warm": dict(self.min_warm),
            "stopped_retention_seconds": self.stopped_retention.total_seconds(),
            "scale_up_margin_seconds": self.scale_up_margin.total_seconds(),
            "stop_between_reservations": self.stop_between_reservations,
            "allow_cancel_drain": self.allow_cancel_drain,
            "stop_min_saving_seconds": self.stop_min_saving.total_seconds(),
            "replacement_lead": self.replacement_lead,
            "consolidate": self.consolidate,
            "consolidation_min_saving_seconds": self.consolidation_min_saving.total_seconds(),
            "hedge_boots": self.hedge_boots,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScalingSettings:
        def seconds(name: str, default: timedelta) -> timedelta:
            value = data.get(f"{name}_seconds")
            return default if value is None else timedelta(seconds=float(value))

        base = cls()
        return cls(
            horizon=seconds("horizon", base.horizon),
            grace_period=seconds("grace_period", base.grace_period),
            instantiation_lead=seconds("instantiation_lead", base.instantiation_lead),
            min_warm=dict(data.get("min_warm", {})),
            stopped_retention=seconds("stopped_retention", base.stopped_retention),
            scale_up_margin=seconds("scale_up_margin", base.scale_up_margin),
            stop_between_reservations=bool(data.get("stop_between_reservations", base.stop_between_reservations)),
            allow_cancel_drain=bool(data.get("allow_cancel_drain", base.allow_cancel_drain)),
            stop_min_saving=seconds("stop_min_saving", base.stop_min_saving),
            replacement_lead=bool(data.get("replacement_lead", base.replacement_lead)),
            consolidate=bool(data.get("consolidate", base.consolidate)),
            consolidation_min_saving=seconds("consolidation_min_saving", base.consolidation_min_saving),
            hedge_boots=bool(data.get("hedge_boots", base.hedge_boots)),
        )
