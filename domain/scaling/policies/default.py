"""The default policy (SPEC §5): look ahead over the ledger and the queue.

Scale up so capacity is ready by ``timeslot_start - instantiation_lead`` for every queued
instance within the horizon and every booking on a stopped worker, sized by packing the
whole demand at once; launches and restarts are made as late as boot time plus
``scale_up_margin`` (and the lead for one replacement boot) allows (earlier ones are listed
as ``deferred``); a boot that cannot get that lead gets a spare booting in parallel
(``hedging``). Consolidation first moves bookings that have not started instantiating
off workers they alone keep up (``consolidation``); the rest of the plan sees the fleet
after those moves. Scale down by the rules of ``scale_down`` (never a lab cut short).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.scaling.actions import ScalingAction
from domain.scaling.consolidation import consolidate
from domain.scaling.demand import split_queued
from domain.scaling.hedging import merge_launches, plan_hedges
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings, TemplateOffer
from domain.scaling.plan import ScalingPlan
from domain.scaling.policies.common import assemble
from domain.scaling.policies.scale_down import plan_scale_down
from domain.scaling.policies.scale_up import plan_scale_up


def plan_default(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
) -> ScalingPlan:
    queued, _beyond = split_queued(now, demand, settings)
    moves: list[ScalingAction] = []
    if settings.consolidate:
        consolidation = consolidate(now, fleet, templates, demand, settings)
        moves, fleet = list(consolidation.moves), consolidation.fleet
    up = plan_scale_up(now, fleet, templates, queued, settings, defer=True)
    hedges = plan_hedges(now, fleet, templates, demand, settings, capacity=up.capacity, relied_on=up.relied_on)
    down = plan_scale_down(now, fleet, templates, settings, relied_on={**up.relied_on, **hedges.keep})
    return assemble(
        now=now,
        policy="default",
        fleet=fleet,
        templates=templates,
        demand=demand,
        settings=settings,
        actions=moves + merge_launches(up.actions, hedges.actions) + down,
        deferred=up.deferred,
        unplaceable=up.unplaceable,
        late_minutes=up.late_minutes,
        per_template=up.per_template,
        capacity_plan=[*up.capacity, *hedges.capacity],
        idle_reason=_why_nothing(up.deferred, queued),
    )


def _why_nothing(deferred: Sequence[object], queued: Sequence[DemandItem]) -> str:
    if deferred:
        return "capacity is planned but not due yet (see deferred)"
    if queued:
        return "queued demand fits existing or booting capacity"
    return "no queued demand; nothing idle to scale down"
