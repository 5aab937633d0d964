"""What a scaling plan asks the fleet to do: one value object per kind of step.

Every action says why (``reason``) and what drove it (``inputs``: instance ids, times,
counts), so the ``ScalingDecided`` event is the scaling audit (SPEC §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ScalingAction:
    kind: ClassVar[str] = "ScalingAction"

    def to_dict(self) -> dict[str, Any]:
        data = {"action": self.kind}
        for f in fields(self):
            data[f.name] = _jsonable(getattr(self, f.name))
        return data


@dataclass(frozen=True)
class RestartWorker(ScalingAction):
    """Start a STOPPED worker again (restart_minutes), ahead of the need it covers."""

    kind: ClassVar[str] = "RestartWorker"
    worker_id: str
    needed_by: datetime | None = None
    covers: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class LaunchWorker(ScalingAction):
    """Launch ``count`` new workers of ``template`` (startup_minutes), all needed by ``needed_by``."""

    kind: ClassVar[str] = "LaunchWorker"
    template: str
    count: int
    needed_by: datetime | None = None
    covers: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class CancelDrain(ScalingAction):
    """Take a DRAINING worker back (→ RUNNING) because new demand needs its capacity."""

    kind: ClassVar[str] = "CancelDrain"
    worker_id: str
    covers: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class StartDraining(ScalingAction):
    kind: ClassVar[str] = "StartDraining"
    worker_id: str
    reason: str = ""


@dataclass(frozen=True)
class StopWorker(ScalingAction):
    kind: ClassVar[str] = "StopWorker"
    worker_id: str
    reason: str = ""


@dataclass(frozen=True)
class TerminateWorker(ScalingAction):
    kind: ClassVar[str] = "TerminateWorker"
    worker_id: str
    reason: str = ""


@dataclass(frozen=True)
class ForceTerminateLeftovers(ScalingAction):
    """Terminate the instances still on a worker whose drain timed out (SPEC §5)."""

    kind: ClassVar[str] = "ForceTerminateLeftovers"
    worker_id: str
    instance_ids: tuple[str, ...] = ()
    reason: str = "drain_timeout"


@dataclass(frozen=True)
class MoveReservation(ScalingAction):
    """Consolidation: move a booking that has not started instantiating to another worker.

    The booked window stays; the ports are allocated again on the new worker. ``saves_hours``
    is the worker-hours the whole move set of this reason saves in the plan that made it.
    """

    kind: ClassVar[str] = "MoveReservation"
    instance_id: str
    from_worker_id: str
    to_worker_id: str
    hold_start: datetime | None = None
    saves_hours: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class NoAction(ScalingAction):
    kind: ClassVar[str] = "NoAction"
    reason: str = ""


@dataclass(frozen=True)
class DeferredLaunch:
    """Capacity the plan will need but launches later (at ``launch_at``): not an action yet.

    Recorded so "why is my lab still queued" has an answer, and so the caller knows when
    to plan again (``ScalingPlan.next_decision_at``).
    """

    template: str
    count: int
    launch_at: datetime
    needed_by: datetime
    covers: tuple[str, ...] = field(default=())
    restart_worker_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "count": self.count,
            "launch_at": self.launch_at.isoformat(),
            "needed_by": self.needed_by.isoformat(),
            "covers": list(self.covers),
            "restart_worker_id": self.restart_worker_id,
        }


@dataclass(frozen=True)
class PlannedCapacity:
    """One worker the plan relies on and what it is expected to carry (the packing's answer).

    ``key`` is the worker id, or ``new:<template>:<n>`` for a worker to launch; ``origin``
    is ``fleet`` (exists as is), ``cancel_drain``, ``restart`` or ``launch``; ``act_at`` is
    when the restart/launch happens (``now`` or later, if deferred); ``ready_at`` when it
    can take labs. ``covers`` are the queued instances packed onto it.
    """

    key: str
    origin: str
    template: str
    worker_id: str | None
    act_at: datetime
    ready_at: datetime
    covers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "origin": self.origin,
            "template": self.template,
            "worker_id": self.worker_id,
            "act_at": self.act_at.isoformat(),
            "ready_at": self.ready_at.isoformat(),
            "covers": list(self.covers),
        }


SCALE_UP_ACTIONS = (RestartWorker, LaunchWorker, CancelDrain)
CONSOLIDATION_ACTIONS = (MoveReservation,)
SCALE_DOWN_ACTIONS = (StartDraining, StopWorker, TerminateWorker, ForceTerminateLeftovers)
