"""Reactive baseline: no look-ahead, one worker at a time.

Scale up only when an instance is queued and due now (its need time has come) and fits no
RUNNING or booting worker, and nothing is booting already: restart one stopped worker
that fits it, else launch one worker of the cheapest template that fits. A stopped worker
is restarted when one of its holds has begun. Scale down a RUNNING worker as soon as it
is idle at this instant (stop; still never one with an active lab). Draining, drain
timeout, stopped retention and min_warm follow the shared scale-down rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.scaling.actions import LaunchWorker, RestartWorker, ScalingAction
from domain.scaling.inputs import BOOTING_STATES, DemandItem, FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.packing import RESTART, demand_order, fleet_bin, pack, template_fits
from domain.scaling.plan import ScalingPlan
from domain.scaling.policies.common import assemble
from domain.scaling.policies.scale_down import plan_scale_down


def plan_reactive(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
) -> ScalingPlan:
    by_name = {t.name: t for t in templates}
    lead = settings.instantiation_lead
    due = [d for d in demand if d.queued and d.needed_by(lead) <= now]
    live = [w for w in fleet if w.state is WorkerState.RUNNING or w.state in BOOTING_STATES]
    bins = [fleet_bin(w, now, by_name) for w in live]
    packing = pack(
        now,
        demand_order(due, lead),
        in_use=[b for b in bins if b.in_use],
        idle=[b for b in bins if not b.in_use],
        openings=[],
        templates=templates,
        lead=lead,
        allow_launch=False,
    )
    relied_on = {b.worker_id for b in packing.bins if b.packed and b.worker_id}
    actions: list[ScalingAction] = []
    per_template: dict[str, dict[str, int]] = {}

    # Stopped workers whose booked hold has begun: restart now (late by the restart time).
    for worker in fleet:
        if worker.state is WorkerState.STOPPED and any(r.is_active_at(now) for r in worker.reservations):
            relied_on.add(worker.worker_id)
            actions.append(RestartWorker(worker.worker_id, needed_by=now, reason="reactive: a booked hold has begun"))
            per_template.setdefault(worker.template_name, {}).setdefault("restart_now", 0)
            per_template[worker.template_name]["restart_now"] += 1

    booting = any(w.state in BOOTING_STATES for w in fleet)
    if packing.unplaceable and not booting:
        first = packing.unplaceable[0]
        stopped = sorted(
            (
                w
                for w in fleet
                if w.state is WorkerState.STOPPED and w.worker_id not in relied_on
                and fleet_bin(w, now, by_name, origin=RESTART).fits(first)
            ),
            key=lambda w: (by_name[w.template_name].hourly_cost if w.template_name in by_name else 0.0, w.worker_id),
        )
        fitting = sorted((t for t in templates if template_fits(t, first)), key=lambda t: (t.hourly_cost, t.name))
        if stopped:
            worker = stopped[0]
            relied_on.add(worker.worker_id)
            actions.append(
                RestartWorker(worker.worker_id, needed_by=now, covers=(first.instance_id,),
                              reason="reactive: queued instance fits nothing running")
            )
        elif fitting:
            actions.append(
                LaunchWorker(fitting[0].name, 1, needed_by=now, covers=(first.instance_id,),
                             reason="reactive: queued instance fits nothing running; one worker at a time")
            )
            per_template.setdefault(fitting[0].name, {}).setdefault("launch_now", 0)
            per_template[fitting[0].name]["launch_now"] += 1

    down = plan_scale_down(now, fleet, templates, settings, relied_on=relied_on, idle_rule="now")
    unplaceable = [
        i.instance_id for i in packing.unplaceable if not any(template_fits(t, i) for t in templates)
    ]
    return assemble(
        now=now,
        policy="reactive",
        fleet=fleet,
        templates=templates,
        demand=demand,
        settings=settings,
        actions=actions + down,
        deferred=[],
        unplaceable=unplaceable,
        late_minutes={},
        per_template=per_template,
        idle_reason="reactive: nothing due is unplaceable and nothing is idle"
        + (" (waiting for a booting worker)" if booting and packing.unplaceable else ""),
    )
