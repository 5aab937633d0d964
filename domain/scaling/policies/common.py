"""Assembling a ``ScalingPlan``: canonical action order, inputs summary, next decision time."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.scaling.actions import (
    CancelDrain,
    DeferredLaunch,
    ForceTerminateLeftovers,
    LaunchWorker,
    MoveReservation,
    NoAction,
    PlannedCapacity,
    RestartWorker,
    ScalingAction,
    StartDraining,
    StopWorker,
    TerminateWorker,
)
from domain.scaling.demand import capacity_by_state, demand_summary
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.plan import ScalingPlan

# Moves first: the workers they empty are stopped by the same plan, after them.
_RANK = {
    MoveReservation: -1,
    CancelDrain: 0,
    RestartWorker: 1,
    LaunchWorker: 2,
    ForceTerminateLeftovers: 3,
    StartDraining: 4,
    StopWorker: 5,
    TerminateWorker: 6,
    NoAction: 7,
}


def _sort_key(action: ScalingAction) -> tuple[Any, ...]:
    if isinstance(action, MoveReservation):  # in the order the consolidation chose them
        return (_RANK[MoveReservation], "", "")
    return (_RANK[type(action)], getattr(action, "worker_id", ""), getattr(action, "template", ""))


def next_decision_at(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    deferred: Sequence[DeferredLaunch],
    settings: ScalingSettings,
) -> datetime | None:
    """The earliest later instant at which planning again may change something."""
    del templates  # (kept in the signature: drain deadlines now live on the worker)
    moments = [d.launch_at for d in deferred]
    for worker in fleet:
        holds = worker.hold_moments(settings.grace_period)  # sorted: the first one after now
        after = bisect_right(holds, now)
        if after < len(holds):
            moments.append(holds[after])
        if worker.state is WorkerState.DRAINING and worker.drain_deadline is not None:
            moments.append(worker.drain_deadline)
        if worker.state is WorkerState.STOPPED:
            moments.append(worker.state_since + settings.stopped_retention)
        if worker.expected_ready_at is not None and worker.state in (WorkerState.PENDING, WorkerState.PROVISIONING):
            moments.append(worker.expected_ready_at)
    later = [m for m in moments if m > now]
    return min(later) if later else None


def assemble(
    *,
    now: datetime,
    policy: str,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
    actions: list[ScalingAction],
    deferred: list[DeferredLaunch],
    unplaceable: list[str],
    late_minutes: dict[str, float],
    per_template: dict[str, dict[str, int]],
    idle_reason: str,
    capacity_plan: Sequence[PlannedCapacity] = (),
) -> ScalingPlan:
    ordered = sorted(actions, key=_sort_key)
    if not ordered:
        ordered = [NoAction(reason=idle_reason)]
    deferred_sorted = sorted(deferred, key=lambda d: (d.launch_at, d.template, d.restart_worker_id or ""))
    inputs = {
        "demand": demand_summary(now, fleet, demand, settings),
        "capacity": capacity_by_state(fleet),
        "horizon": {"from": now.isoformat(), "to": (now + settings.horizon).isoformat()},
        "settings": settings.to_dict(),
        "templates": [t.name for t in templates],
        "per_template": {k: dict(v) for k, v in sorted(per_template.items())},
        "late_minutes": dict(sorted(late_minutes.items())),
    }
    return ScalingPlan(
        now=now,
        policy=policy,
        actions=tuple(ordered),
        deferred=tuple(deferred_sorted),
        unplaceable=tuple(sorted(unplaceable)),
        next_decision_at=next_decision_at(now, fleet, templates, deferred_sorted, settings),
        capacity_plan=tuple(sorted(capacity_plan, key=lambda c: c.key)),
        inputs=inputs,
    )
