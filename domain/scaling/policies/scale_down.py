"""Scale down (SPEC §5): drain, stop and terminate what demand no longer needs.

Rules, per worker (in worker id order):
- never touch a worker the scale-up relies on, nor one holding an active lab (an active
  instance, or a hold covering ``now``) — except by drain timeout;
- RUNNING with no reservation overlapping ``[now, now + grace)``: no live reservation at
  all → StopWorker; only later ones → StartDraining (SPEC), or StopWorker when
  ``stop_between_reservations`` (the plan restarts it before its next hold);
- DRAINING past its template's ``drain_timeout_hours`` → ForceTerminateLeftovers (if any)
  then StopWorker; DRAINING with nothing active and every hold ended → StopWorker;
- STOPPED, nothing booked, stopped longer than ``stopped_retention`` → TerminateWorker;
- ``min_warm``: at least that many RUNNING workers per template stay up (the ones with
  the soonest next reservation are kept).
Stop is always preferred over terminate: only long-stopped workers are terminated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.scaling.actions import ForceTerminateLeftovers, ScalingAction, StartDraining, StopWorker, TerminateWorker
from domain.scaling.demand import minutes
from domain.scaling.inputs import FleetWorker, ScalingSettings, TemplateOffer, WorkerState

_DEFAULT_DRAIN_TIMEOUT = timedelta(hours=4)
_DEFAULT_RESTART = timedelta(minutes=5)


def _idle_candidates(
    now: datetime, worker: FleetWorker, settings: ScalingSettings, restart: timedelta
) -> ScalingAction | None:
    """What an idle RUNNING worker should do, or None when it must stay."""
    if worker.holds_active_lab(now):
        return None
    if worker.has_reservation_within(now, now + settings.grace_period):
        return None
    next_start = worker.next_reservation_start(now)
    if next_start is None:
        return StopWorker(
            worker.worker_id,
            reason=f"no reservation and no active lab (grace {minutes(settings.grace_period):g} min): stop, not terminate",
        )
    if settings.stop_between_reservations and next_start - now >= restart + settings.scale_up_margin:
        return StopWorker(
            worker.worker_id,
            reason=f"idle until its next hold at {next_start.isoformat()}: stop now, restart planned before it",
        )
    return StartDraining(
        worker.worker_id,
        reason=f"no reservation within the grace period ({minutes(settings.grace_period):g} min); "
        f"next hold at {next_start.isoformat()}: accept nothing new",
    )


def plan_scale_down(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    settings: ScalingSettings,
    *,
    relied_on: set[str],
    idle_rule: str = "grace",
) -> list[ScalingAction]:
    """``idle_rule`` ``grace`` (default policy) or ``now`` (reactive: idle at this instant)."""
    by_name = {t.name: t for t in templates}
    actions: list[ScalingAction] = []
    proposals: dict[str, list[tuple[FleetWorker, ScalingAction]]] = {}
    running_count: dict[str, int] = {}

    for worker in fleet:
        template = by_name.get(worker.template_name)
        if worker.state is WorkerState.RUNNING:
            running_count[worker.template_name] = running_count.get(worker.template_name, 0) + 1
            if worker.worker_id in relied_on:
                continue
            restart = template.restart if template else _DEFAULT_RESTART
            if idle_rule == "now":
                action = _idle_now(now, worker)
            else:
                action = _idle_candidates(now, worker, settings, restart)
            if action is not None:
                proposals.setdefault(worker.template_name, []).append((worker, action))
        elif worker.state is WorkerState.DRAINING and worker.worker_id not in relied_on:
            actions.extend(_draining(now, worker, template))
        elif worker.state is WorkerState.STOPPED and worker.worker_id not in relied_on:
            booked = any(r.hold_end > now for r in worker.reservations)
            if not booked and not worker.active_instance_ids and now - worker.state_since >= settings.stopped_retention:
                actions.append(
                    TerminateWorker(
                        worker.worker_id,
                        reason=f"stopped_retention: stopped since {worker.state_since.isoformat()} "
                        f"(> {minutes(settings.stopped_retention):g} min) with nothing booked",
                    )
                )

    for template_name, items in sorted(proposals.items()):
        keep = settings.warm_minimum(template_name)
        removable = max(0, running_count.get(template_name, 0) - keep)
        # Keep warm the workers needed soonest; give up the idlest first.
        far = datetime.max.replace(tzinfo=now.tzinfo)
        # (ties: the highest ids go first, so the lowest ids are the ones kept warm)
        ordered = sorted(items, key=lambda wa: wa[0].worker_id, reverse=True)
        ordered.sort(key=lambda wa: -(wa[0].next_reservation_start(now) or far).timestamp())
        for worker, action in ordered[:removable]:
            actions.append(action)
    return sorted(actions, key=lambda a: (getattr(a, "worker_id", ""), _ORDER[type(a)]))


_ORDER = {ForceTerminateLeftovers: 0, StartDraining: 1, StopWorker: 2, TerminateWorker: 3}


def _idle_now(now: datetime, worker: FleetWorker) -> ScalingAction | None:
    if worker.holds_active_lab(now):
        return None
    return StopWorker(worker.worker_id, reason="reactive: idle now (no active lab, no hold covering now)")


def _draining(now: datetime, worker: FleetWorker, template: TemplateOffer | None) -> list[ScalingAction]:
    timeout = template.drain_timeout if template else _DEFAULT_DRAIN_TIMEOUT
    if now - worker.state_since >= timeout:
        leftovers = tuple(
            sorted(set(worker.active_instance_ids) | {r.instance_id for r in worker.reservations if r.hold_end > now})
        )
        actions: list[ScalingAction] = []
        if leftovers:
            actions.append(ForceTerminateLeftovers(worker.worker_id, leftovers, reason="drain_timeout"))
        actions.append(
            StopWorker(
                worker.worker_id,
                reason=f"drain_timeout: draining since {worker.state_since.isoformat()} "
                f"(> {minutes(timeout):g} min); {len(leftovers)} leftover instance(s) terminated",
            )
        )
        return actions
    if worker.holds_active_lab(now):
        return []
    last = worker.last_hold_end()
    if last is None or last <= now:
        return [StopWorker(worker.worker_id, reason="drained: last reservation ended, no active lab")]
    return []
