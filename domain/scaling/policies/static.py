"""Static baseline: a fixed fleet sized for the peak of the whole demand, never scaled down.

Everything the packing of the whole queued demand (within the horizon) needs is restarted
or launched at once, no deferral; nothing is ever drained, stopped or terminated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.scaling.demand import split_queued
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings, TemplateOffer
from domain.scaling.plan import ScalingPlan
from domain.scaling.policies.common import assemble
from domain.scaling.policies.scale_up import plan_scale_up


def plan_static(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
) -> ScalingPlan:
    queued, _beyond = split_queued(now, demand, settings)
    up = plan_scale_up(now, fleet, templates, queued, settings, defer=False)
    return assemble(
        now=now,
        policy="static",
        fleet=fleet,
        templates=templates,
        demand=demand,
        settings=settings,
        actions=up.actions,
        deferred=[],
        unplaceable=up.unplaceable,
        late_minutes=up.late_minutes,
        per_template=up.per_template,
        capacity_plan=up.capacity,
        idle_reason="static fleet already covers the demand; never scales down",
    )
