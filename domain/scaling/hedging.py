"""Hedged boots: a spare worker booted in parallel when a boot's slack no longer covers one
more failed boot (SPEC §5, boot failures).

The replacement lead (``timing.ready_target``) times a boot so that, should it fail, one
replacement boot is still ready before the first lab's start. Some boots cannot get that
lead: the boot for a booking made with less notice than a boot plus the lead (a seat
booked 20 minutes before an exam), and the replacement of a failed boot itself (a second
failure in a row). A failure is only known when the boot would have ended, so for those a
replacement started then is late by construction; the only protection is capacity
already on its way. This module decides it:

- a **boot** is a worker that is PENDING/PROVISIONING, or that this plan restarts now,
  holding booked labs; its **deadline** is the earliest slot start of the booked (not ASAP)
  labs it holds; its **slack** is ``deadline − ready`` (its expected ready time, or the
  plan's ready time for a restart). Only holds count, not the queued work the plan packs
  onto a worker (an intention the next plan may change): a launch made for queued labs is
  hedged by the plan after the scheduler has reserved them on it (the same instant);
- its **replacement boot** is what ``timing.replacement_boot`` says: the restart time of
  its template when a stopped worker of it is spare, else its launch time;
- it is **at risk** when ``slack < replacement boot``. A boot the plan timed with the lead
  has ``slack = scale_up_margin + replacement boot``, so it is never at risk (the margin
  absorbs a boot that runs a little long);
- a **spare** is a worker of the template holding nothing (no live reservation, no active
  lab; queued work packed onto it does not count, for the same reason) that is RUNNING, or
  booting and ready by the earliest at-risk deadline; a launch of this plan counts.

Per template with boots at risk and no spare: **one hedge**, a restart of a spare stopped
worker if it is ready by that deadline, else a launch if it is; none when neither would be
(a hedge that cannot make any start on time is never launched). One spare covers one
failure among the template's boots at risk, the guarantee the lead gives a boot timed
with it. If a boot fails, its labs are re-queued onto the spare (the scheduler takes a
worker still booting when it is ready by the slot's start); if none fails, the spare is
stopped as idle once no boot of its template is at risk. The cost is one boot plus that
idle time, measured per workload in docs/benchmarks.md (issue 15).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.scaling.actions import LaunchWorker, PlannedCapacity, RestartWorker, ScalingAction
from domain.scaling.demand import minutes
from domain.scaling.inputs import BOOTING_STATES, DemandItem, FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.timing import DEFAULT_STARTUP, replacement_boot

_NEW_BOOTS = frozenset({"restart", "launch"})


@dataclass(frozen=True)
class Boot:
    """One boot whose labs depend on it, with the numbers that decide whether it is at risk."""

    key: str  # worker id, or the plan's key for a new worker
    template_name: str
    ready_at: datetime
    deadline: datetime  # the earliest slot start of the booked labs on it
    replacement: timedelta

    @property
    def slack(self) -> timedelta:
        return self.deadline - self.ready_at

    @property
    def at_risk(self) -> bool:
        return self.slack < self.replacement


@dataclass
class Hedges:
    """The hedging part of a plan: actions to add, and spares the scale-down must keep."""

    actions: list[ScalingAction] = field(default_factory=list)
    capacity: list[PlannedCapacity] = field(default_factory=list)  # the hedges, for the capacity plan
    keep: dict[str, None] = field(default_factory=dict)  # spare worker id -> None (relied on now)
    at_risk: list[Boot] = field(default_factory=list)


def plan_hedges(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
    *,
    capacity: Sequence[PlannedCapacity],
    relied_on: Mapping[str, datetime | None],
) -> Hedges:
    """Hedges for the boots at risk, given the scale-up's planned capacity and the workers
    it relies on (so a stopped worker it restarts is not counted as spare)."""
    result = Hedges()
    if not settings.hedge_boots:
        return result
    by_name = {t.name: t for t in templates}
    starts = {d.instance_id: d.timeslot_start for d in demand}
    spare_stopped = _spare_stopped(now, fleet, relied_on)
    boots = _boots(now, fleet, capacity, starts, settings, by_name, spare_stopped)
    result.at_risk = [b for b in boots if b.at_risk]
    for template_name in sorted({b.template_name for b in result.at_risk}):
        risky = [b for b in result.at_risk if b.template_name == template_name]
        deadline = min(b.deadline for b in risky)
        spare = _spare(now, fleet, template_name, deadline, capacity)
        if spare is not None:
            if spare:  # an existing worker (a new empty boot of this plan needs no keeping)
                result.keep[spare] = None
            continue
        hedge = _hedge(now, template_name, risky, deadline, by_name.get(template_name),
                       spare_stopped.get(template_name, []))
        if hedge is not None:
            result.actions.append(hedge)
            template = by_name[template_name]
            if isinstance(hedge, RestartWorker):
                result.keep[hedge.worker_id] = None
                result.capacity.append(PlannedCapacity(f"hedge:{hedge.worker_id}", "restart", template_name,
                                                       hedge.worker_id, now, now + template.restart, ()))
            else:
                result.capacity.append(PlannedCapacity(f"hedge:{template_name}", "launch", template_name, None,
                                                       now, now + template.startup, ()))
    return result


def merge_launches(actions: Iterable[ScalingAction], hedges: Iterable[ScalingAction]) -> list[ScalingAction]:
    """The scale-up's actions with the hedges added; a hedge launch joins the launch of its
    template in this plan (one ``LaunchWorker`` per template: the processor numbers the
    workers of one action, so two actions of one template would collide)."""
    merged = list(actions)
    for hedge in hedges:
        if isinstance(hedge, LaunchWorker):
            same = [i for i, a in enumerate(merged) if isinstance(a, LaunchWorker) and a.template == hedge.template]
            if same:
                base = merged[same[0]]
                assert isinstance(base, LaunchWorker)
                merged[same[0]] = LaunchWorker(
                    template=base.template, count=base.count + hedge.count, needed_by=base.needed_by,
                    covers=base.covers, reason=f"{base.reason}; {hedge.reason}",
                )
                continue
        merged.append(hedge)
    return merged


def _spare_stopped(
    now: datetime, fleet: Sequence[FleetWorker], relied_on: Mapping[str, datetime | None]
) -> dict[str, list[str]]:
    """Stopped workers with nothing booked that the plan does not use, per template."""
    spare: dict[str, list[str]] = {}
    for w in fleet:
        if (w.state is WorkerState.STOPPED and w.worker_id not in relied_on
                and not any(r.hold_end > now for r in w.reservations)):
            spare.setdefault(w.template_name, []).append(w.worker_id)
    return {k: sorted(v) for k, v in spare.items()}


def _deadline(
    now: datetime, worker: FleetWorker, starts: Mapping[str, datetime | None], lead: timedelta
) -> datetime | None:
    """The earliest slot start of the booked labs it holds (ASAP labs have none; a hold the
    demand does not list counts from its start plus the lead)."""
    found = [s for r in worker.reservations if r.hold_end > now
             and (s := starts.get(r.instance_id, r.hold_start + lead)) is not None]
    return min(found, default=None)


def _boots(
    now: datetime,
    fleet: Sequence[FleetWorker],
    capacity: Sequence[PlannedCapacity],
    starts: Mapping[str, datetime | None],
    settings: ScalingSettings,
    by_name: Mapping[str, TemplateOffer],
    spare_stopped: Mapping[str, list[str]],
) -> list[Boot]:
    """Booting workers, and workers this plan restarts now, that hold booked labs."""
    restarted_now = {c.worker_id: c.ready_at for c in capacity
                     if c.origin == "restart" and c.worker_id is not None and c.act_at <= now}
    boots: list[Boot] = []
    for worker in fleet:
        if worker.state in BOOTING_STATES:
            template = by_name.get(worker.template_name)
            ready = max(now, worker.expected_ready_at or now + (template.startup if template else DEFAULT_STARTUP))
        elif worker.worker_id in restarted_now:
            ready = restarted_now[worker.worker_id]
        else:
            continue
        deadline = _deadline(now, worker, starts, settings.instantiation_lead)
        if deadline is None:
            continue
        boot = replacement_boot(by_name.get(worker.template_name), settings,
                                spare_stopped=bool(spare_stopped.get(worker.template_name)))
        boots.append(Boot(worker.worker_id, worker.template_name, ready, deadline,
                          boot if boot is not None else DEFAULT_STARTUP))
    return boots


def _spare(
    now: datetime,
    fleet: Sequence[FleetWorker],
    template_name: str,
    deadline: datetime,
    capacity: Sequence[PlannedCapacity],
) -> str | None:
    """An empty worker of the template up or ready by ``deadline``: its id ("" for an empty
    boot this plan makes, e.g. for ``min_warm``); None when there is none."""
    for w in fleet:
        # What the plan packed onto it does not count: those are intentions, not holds, and
        # the scheduler serves the queue by start time, so labs re-queued from a failed boot
        # (the earliest starts) come first. Counting them would make the next plan, which
        # packs queued work onto the new spare, launch another one.
        if w.template_name != template_name:
            continue
        if any(r.hold_end > now for r in w.reservations) or w.active_instance_ids:
            continue
        if w.state is WorkerState.RUNNING:
            return w.worker_id
        if w.state in BOOTING_STATES and w.expected_ready_at is not None and w.expected_ready_at <= deadline:
            return w.worker_id
    holding = {w.worker_id for w in fleet if any(r.hold_end > now for r in w.reservations)}
    for entry in capacity:  # a boot of this plan holding nothing yet (queued work packed on it may be)
        if (entry.template == template_name and entry.origin in _NEW_BOOTS and entry.act_at <= now
                and entry.worker_id not in holding and entry.ready_at <= deadline):
            return entry.worker_id or ""
    return None


def _hedge(
    now: datetime,
    template_name: str,
    risky: Sequence[Boot],
    deadline: datetime,
    template: TemplateOffer | None,
    stopped: Sequence[str],
) -> ScalingAction | None:
    worst = min(risky, key=lambda b: (b.slack, b.key))
    why = (f"hedge: {len(risky)} {template_name} boot(s) cannot be replaced in time if they fail "
           f"(least slack {minutes(worst.slack):g} min before the first start at {worst.deadline.isoformat()}, "
           f"one replacement boot takes {minutes(worst.replacement):g} min)")
    if stopped and template is not None and now + template.restart <= deadline:
        return RestartWorker(worker_id=stopped[0], needed_by=deadline, covers=(),
                             reason=f"{why}: a spare stopped worker restarted in parallel")
    if template is not None and now + template.startup <= deadline:
        return LaunchWorker(template=template_name, count=1, needed_by=deadline, covers=(),
                            reason=f"{why}: one spare launched in parallel")
    return None
