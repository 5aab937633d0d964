"""Scale down (SPEC §5): stop and terminate what demand no longer needs — never a lab.

No rule here ends a lab inside its booked window: a worker holding an active lab (an
active instance, or a hold covering ``now``) is never stopped, and the autoscaler never
drains. The one exception is an admin's drain *with a timeout* (``drain_deadline``):
past it, the labs still on the worker are ended with reason ``drain_timeout``.

Rules, per worker (in worker id order):
- a worker the scale-up restarts or takes back is left alone;
- RUNNING (or DRAINING without a passed deadline), no active lab, no hold within
  ``[now, now + grace)``: nothing booked or packed on it any more → StopWorker; its next
  need further away than the break-even (``domain.scaling.timing.stop_pays``: down at
  least ``stop_min_saving`` before the restart the scale-up will make) → StopWorker, and
  the scale-up restarts it in time; otherwise it stays up;
- DRAINING past an admin's ``drain_deadline`` → ForceTerminateLeftovers (the labs on it;
  future bookings are re-queued, not ended) then StopWorker;
- STOPPED, nothing booked, stopped longer than ``stopped_retention`` → TerminateWorker;
- ``min_warm``: at least that many RUNNING workers per template stay up (the ones with
  the soonest next need are kept).
Stop is always preferred over terminate: only long-stopped workers are terminated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from domain.scaling.actions import ForceTerminateLeftovers, ScalingAction, StopWorker, TerminateWorker
from domain.scaling.demand import minutes
from domain.scaling.inputs import FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.timing import stop_pays


def _next_need(now: datetime, worker: FleetWorker, packed_need: datetime | None) -> datetime | None:
    """The earliest future hold on the worker, or queued work the plan packed onto it."""
    needs = [t for t in (worker.next_reservation_start(now), packed_need) if t is not None]
    return min(needs, default=None)


def _idle_action(
    now: datetime,
    worker: FleetWorker,
    template: TemplateOffer | None,
    settings: ScalingSettings,
    *,
    packed_need: datetime | None,
    spare_stopped: bool,
) -> ScalingAction | None:
    """What an idle worker should do, or None when it must (or should) stay up."""
    if worker.holds_active_lab(now):
        return None
    if worker.has_reservation_within(now, now + settings.grace_period):
        return None
    next_need = _next_need(now, worker, packed_need)
    if next_need is None:
        return StopWorker(
            worker.worker_id,
            reason=f"no reservation and no active lab (grace {minutes(settings.grace_period):g} min): stop, not terminate",
        )
    if next_need - now < settings.grace_period or not settings.stop_between_reservations:
        return None
    pays, restart_at = stop_pays(now, next_need, template, settings, spare_stopped=spare_stopped)
    if not pays:
        return None
    return StopWorker(
        worker.worker_id,
        reason=f"idle until its next need at {next_need.isoformat()}: stop now, restart at "
        f"{restart_at.isoformat()} ({minutes(restart_at - now):g} min down, break-even "
        f"{minutes(settings.stop_min_saving):g} min)",
    )


def plan_scale_down(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    settings: ScalingSettings,
    *,
    relied_on: Mapping[str, datetime | None] | set[str],
    idle_rule: str = "grace",
) -> list[ScalingAction]:
    """``idle_rule`` ``grace`` (default policy) or ``now`` (reactive: idle at this instant).

    ``relied_on``: workers the scale-up relies on; with a time (a mapping), the earliest
    need of what it packed there — such a worker may still be stopped across the gap.
    """
    by_name = {t.name: t for t in templates}
    packed_needs: Mapping[str, datetime | None] = (
        relied_on if isinstance(relied_on, Mapping) else dict.fromkeys(relied_on)
    )
    actions: list[ScalingAction] = []
    proposals: dict[str, list[tuple[FleetWorker, ScalingAction]]] = {}
    running_count: dict[str, int] = {}
    spare = {
        w.template_name for w in fleet
        if w.state is WorkerState.STOPPED and not any(r.hold_end > now for r in w.reservations)
    }

    for worker in fleet:
        template = by_name.get(worker.template_name)
        relied = worker.worker_id in packed_needs
        packed_need = packed_needs.get(worker.worker_id)
        if relied and packed_need is None:
            continue  # restarted or taken back by this plan
        if worker.state is WorkerState.RUNNING:
            running_count[worker.template_name] = running_count.get(worker.template_name, 0) + 1
            if idle_rule == "now":
                action = None if relied else _idle_now(now, worker)
            else:
                action = _idle_action(now, worker, template, settings, packed_need=packed_need,
                                      spare_stopped=worker.template_name in spare)
            if action is not None:
                proposals.setdefault(worker.template_name, []).append((worker, action))
        elif worker.state is WorkerState.DRAINING:
            actions.extend(_draining(now, worker, template, settings, packed_need=packed_need,
                                     spare_stopped=worker.template_name in spare))
        elif worker.state is WorkerState.STOPPED and not relied:
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
        for _worker, action in ordered[:removable]:
            actions.append(action)
    return sorted(actions, key=lambda a: (getattr(a, "worker_id", ""), _ORDER[type(a)]))


_ORDER = {ForceTerminateLeftovers: 0, StopWorker: 2, TerminateWorker: 3}


def _idle_now(now: datetime, worker: FleetWorker) -> ScalingAction | None:
    if worker.holds_active_lab(now):
        return None
    return StopWorker(worker.worker_id, reason="reactive: idle now (no active lab, no hold covering now)")


def _draining(
    now: datetime,
    worker: FleetWorker,
    template: TemplateOffer | None,
    settings: ScalingSettings,
    *,
    packed_need: datetime | None,
    spare_stopped: bool,
) -> list[ScalingAction]:
    """A DRAINING worker: an admin's drain (the autoscaler never drains).

    Only a drain with a deadline ends labs, and only once the deadline has passed.
    Otherwise it stops when idle, like a RUNNING worker (restarted for its bookings).
    """
    deadline = worker.drain_deadline
    if deadline is not None and now >= deadline:
        leftovers = tuple(
            sorted(set(worker.active_instance_ids) | {r.instance_id for r in worker.reservations if r.hold_end > now})
        )
        actions: list[ScalingAction] = []
        if leftovers:
            actions.append(ForceTerminateLeftovers(worker.worker_id, leftovers, reason="drain_timeout"))
        actions.append(
            StopWorker(
                worker.worker_id,
                reason=f"drain_timeout: the admin's drain deadline {deadline.isoformat()} has passed; "
                f"{len(leftovers)} leftover instance(s): labs on it terminated, future bookings re-queued",
            )
        )
        return actions
    action = _idle_action(now, worker, template, settings, packed_need=packed_need, spare_stopped=spare_stopped)
    return [action] if action is not None else []
