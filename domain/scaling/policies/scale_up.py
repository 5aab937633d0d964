"""Scale up: capacity ready by every need, sized for the whole queued demand at once.

Shared by the default policy (with look-ahead and deferral) and the static baseline
(everything launched at once). See ``domain.scaling.packing`` for how bins are chosen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.scaling.actions import (
    CancelDrain,
    DeferredLaunch,
    LaunchWorker,
    PlannedCapacity,
    RestartWorker,
    ScalingAction,
)
from domain.scaling.demand import minutes
from domain.scaling.inputs import BOOTING_STATES, DemandItem, FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.timing import replacement_boot
from domain.scaling.packing import (
    CANCEL_DRAIN,
    FLEET,
    LAUNCH,
    RESTART,
    Bin,
    Packing,
    demand_order,
    fleet_bin,
    launch_bin,
    pack,
)


@dataclass
class ScaleUp:
    actions: list[ScalingAction] = field(default_factory=list)
    deferred: list[DeferredLaunch] = field(default_factory=list)
    # Workers this plan relies on (packed onto, restarted, taken back) and from when: None =
    # now (restarted, taken back: never scaled down by this plan); a time = the earliest need
    # of the queued work packed onto it (the scale-down may still stop it across the gap).
    relied_on: dict[str, datetime | None] = field(default_factory=dict)
    unplaceable: list[str] = field(default_factory=list)
    late_minutes: dict[str, float] = field(default_factory=dict)
    per_template: dict[str, dict[str, int]] = field(default_factory=dict)
    capacity: list[PlannedCapacity] = field(default_factory=list)


def _count(per_template: dict[str, dict[str, int]], template: str, what: str, n: int = 1) -> None:
    entry = per_template.setdefault(
        template, {"launch_now": 0, "launch_deferred": 0, "restart_now": 0, "restart_deferred": 0, "cancel_drain": 0}
    )
    entry[what] += n


def _late_note(now: datetime, bin_: Bin, need: datetime) -> str:
    if bin_.earliest_ready <= need:
        return ""
    return f"; start will be late by {minutes(bin_.earliest_ready - need):g} min (boot cannot make {need.isoformat()})"


def plan_scale_up(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    queued: Sequence[DemandItem],
    settings: ScalingSettings,
    *,
    defer: bool = True,
) -> ScaleUp:
    by_name = {t.name: t for t in templates}
    margin = settings.scale_up_margin
    lead = settings.instantiation_lead

    in_use: list[Bin] = []
    idle: list[Bin] = []
    openings: list[Bin] = []
    for worker in fleet:
        live = [r for r in worker.reservations if r.hold_end > now]
        if worker.state is WorkerState.RUNNING or worker.state in BOOTING_STATES:
            (in_use if live else idle).append(fleet_bin(worker, now, by_name))
        elif worker.state is WorkerState.STOPPED:
            bin_ = fleet_bin(worker, now, by_name, origin=RESTART)
            if live:
                # Booked on a stopped worker: it must be restarted in time for its own holds.
                bin_.first_need = min(r.hold_start for r in live)
                bin_.first_start = bin_.first_need + lead
                in_use.append(bin_)
            else:
                openings.append(bin_)
        elif worker.state is WorkerState.DRAINING and settings.allow_cancel_drain:
            openings.append(fleet_bin(worker, now, by_name, origin=CANCEL_DRAIN))

    # The warm minimum is opened first, so queued demand can use it like any idle worker
    # (and a second plan finds the same workers pending, not a shortfall).
    warm = _warm_minimum(now, fleet, templates, settings, openings)
    idle += warm
    openings = [b for b in openings if b not in warm]

    packing = pack(
        now,
        demand_order(queued, lead),
        in_use=in_use,
        idle=idle,
        openings=openings,
        templates=templates,
        lead=lead,
    )
    result = ScaleUp(
        unplaceable=[i.instance_id for i in packing.unplaceable],
        late_minutes={k: minutes(v) for k, v in sorted(packing.lateness.items())},
    )
    bins = list(packing.bins) + [b for b in warm if b not in packing.bins]
    _set_replacement_lead(bins, openings, by_name, settings)
    _actions_from_bins(now, bins, settings, result, defer=defer, margin=margin, lead=lead)
    return result


def _set_replacement_lead(
    bins: Sequence[Bin], openings: Sequence[Bin], by_name: dict[str, TemplateOffer], settings: ScalingSettings
) -> None:
    """Each restart or launch leaves lead for one replacement boot: a restart of a stopped
    worker of its template the plan does not use, when there is one, else a launch."""
    used = {id(b) for b in bins}
    spare = {b.template_name for b in openings if b.origin == RESTART and id(b) not in used}
    for bin_ in bins:
        if bin_.flexible:
            bin_.replacement_boot = replacement_boot(by_name.get(bin_.template_name), settings,
                                                     spare_stopped=bin_.template_name in spare)


def _warm_minimum(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    settings: ScalingSettings,
    openings: list[Bin],
) -> list[Bin]:
    """Bins to open now (restarts first, then launches) so each template has ``min_warm`` up."""
    extra: list[Bin] = []
    by_name = {t.name: t for t in templates}
    for template_name, minimum in sorted(settings.min_warm.items()):
        warm = sum(
            1
            for w in fleet
            if w.template_name == template_name and (w.state is WorkerState.RUNNING or w.state in BOOTING_STATES)
        )
        missing = minimum - warm
        if missing <= 0:
            continue
        stopped = sorted((b for b in openings if b.origin == RESTART and b.template_name == template_name), key=lambda b: b.key)
        chosen = stopped[:missing]
        template = by_name.get(template_name)
        if template is not None:
            chosen += [launch_bin(template, now, 900_000 + n) for n in range(missing - len(chosen))]
        for bin_ in chosen:
            bin_.first_need = now  # wanted warm now, not later
            bin_.for_warm_minimum = True
        extra += chosen
    return extra


def _actions_from_bins(
    now: datetime,
    bins: list[Bin],
    settings: ScalingSettings,
    result: ScaleUp,
    *,
    defer: bool,
    margin: timedelta,
    lead: timedelta,
) -> None:
    launches_now: dict[str, list[Bin]] = defaultdict(list)
    launches_later: dict[tuple[str, datetime], list[Bin]] = defaultdict(list)
    for bin_ in sorted(bins, key=lambda b: b.key):
        covers = tuple(sorted(i.instance_id for i in bin_.packed))
        if bin_.origin != FLEET or covers:
            act_at = now if bin_.origin in (FLEET, CANCEL_DRAIN) or not defer else max(now, bin_.action_at(margin))
            ready = bin_.earliest_ready if act_at == now else bin_.ready_at(margin)
            result.capacity.append(
                PlannedCapacity(bin_.key, bin_.origin, bin_.template_name, bin_.worker_id, act_at, ready, covers)
            )
        if bin_.origin == FLEET:
            if bin_.packed and bin_.worker_id:
                result.relied_on[bin_.worker_id] = bin_.first_need
            continue
        if bin_.origin == CANCEL_DRAIN:
            assert bin_.worker_id is not None
            result.relied_on[bin_.worker_id] = None
            result.actions.append(
                CancelDrain(
                    worker_id=bin_.worker_id,
                    covers=covers,
                    reason=f"{len(covers)} queued instance(s) fit on this draining worker; "
                    f"taking it back is quicker and cheaper than a restart or launch",
                )
            )
            _count(result.per_template, bin_.template_name, "cancel_drain")
            continue
        need = bin_.first_need or now
        due = bin_.action_at(margin)
        if bin_.origin == RESTART:
            assert bin_.worker_id is not None
            result.relied_on[bin_.worker_id] = None
            booked = sum(1 for i in bin_.timeline.instance_ids if i not in set(covers))
            why = _restart_reason(bin_, covers, booked, need) + _late_note(now, bin_, need)
            if due <= now or not defer:
                result.actions.append(RestartWorker(worker_id=bin_.worker_id, needed_by=need, covers=covers, reason=why))
                _count(result.per_template, bin_.template_name, "restart_now")
            else:
                result.deferred.append(
                    DeferredLaunch(bin_.template_name, 1, due, need, covers, restart_worker_id=bin_.worker_id)
                )
                _count(result.per_template, bin_.template_name, "restart_deferred")
            continue
        if bin_.origin == LAUNCH:
            if due <= now or not defer:
                launches_now[bin_.template_name].append(bin_)
            else:
                launches_later[(bin_.template_name, due)].append(bin_)

    for template_name, group in sorted(launches_now.items()):
        covers = tuple(sorted(i.instance_id for b in group for i in b.packed))
        need = min(b.first_need or now for b in group)
        demand_bins = [b for b in group if b.packed]
        warm_bins = [b for b in group if b.for_warm_minimum]
        parts = []
        if demand_bins:
            first = min(b.first_need or now for b in demand_bins)
            worst = max(demand_bins, key=lambda b: b.earliest_ready - (b.first_need or now))
            parts.append(
                f"{len(covers)} queued instance(s) need capacity by {first.isoformat()}: packed over their "
                f"hold windows they fill {len(demand_bins)} new {template_name} worker(s) after existing capacity"
                + _late_note(now, worst, worst.first_need or now)
            )
        if warm_bins:
            parts.append(f"min_warm {settings.warm_minimum(template_name)} for {template_name}: {len(warm_bins)} launched to keep it")
        why = "; ".join(parts)
        result.actions.append(
            LaunchWorker(template=template_name, count=len(group), needed_by=need, covers=covers, reason=why)
        )
        _count(result.per_template, template_name, "launch_now", len(group))
    for (template_name, due), group in sorted(launches_later.items()):
        covers = tuple(sorted(i.instance_id for b in group for i in b.packed))
        need = min(b.first_need or now for b in group)
        result.deferred.append(DeferredLaunch(template_name, len(group), due, need, covers))
        _count(result.per_template, template_name, "launch_deferred", len(group))


def _restart_reason(bin_: Bin, covers: tuple[str, ...], booked: int, need: datetime) -> str:
    parts = []
    if booked:
        parts.append(f"{booked} reservation(s) booked on this stopped worker")
    if covers:
        parts.append(f"{len(covers)} queued instance(s) fit on it")
    if not parts:
        parts.append(f"keep min_warm for {bin_.template_name}")
    return "; ".join(parts) + f"; needed by {need.isoformat()}; restart is preferred over a launch"
