"""KPIs of a run, folded from its event log (SPEC §9): the same code scores a simulation and
what actually happened in a real store (``lablet replay``).

- **on-time starts**: a booked instance starts on time when its lab is READY by
  ``timeslot_start + grace``; ASAP requests are reported apart (their wait is from the request);
- **waiting time**: READY − due (``timeslot_start``, or the request for ASAP), 0 when early;
  an instance never READY waits until it ended (or the end of the run) and is late;
- **worker-hours, cost, idle share** per template: ``domain.scaling.cost.fleet_cost`` over the
  workers' billed states, idle = billed time holding no reservation;
- **lower bound**, **offline schedule** and where the hours went: ``references`` over the
  reservations served (a hold released early counts until its release), whatever worker
  they were on, against every registered template;
- **interrupted**: ready labs ended by the system before their booked end, count and
  minutes cut (``interruptions``); an admin's drain timeout is reported apart;
- **scale actions**: actions of the recorded ``ScalingDecided`` events, by kind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.instance import LabletInstance
from domain.resources import Resources
from domain.scaling.cost import CostReport, fleet_cost, state_intervals
from domain.scaling_decision import ScalingDecision
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplate, WorkerTemplateSpec
from processors.simulation.capacity import LabKind
from processors.simulation.interruptions import LabEnd, interruptions
from processors.simulation.lower_bound import LowerBound
from processors.simulation.references import HeldLab, references
from projections.events import StoredEvent

_MINUTE = timedelta(minutes=1)


@dataclass
class _InstanceFacts:
    requested_at: datetime
    start: datetime | None
    end: datetime
    definition: str
    ready_at: datetime | None = None
    ended_at: datetime | None = None
    termination_reason: str | None = None
    logged_in: bool = False
    requirements: dict[str, Any] = field(default_factory=dict)
    worker_id: str | None = None
    first_end: LabEnd | None = None  # the first stop/collect/termination after READY


@dataclass
class _Hold:
    worker_id: str
    instance_id: str
    resources: Resources
    nodes: int
    ports: int
    start: datetime
    end: datetime


@dataclass
class KpiCollector:
    """Feed it the log in order (``observe``), then ``report(until)``."""

    grace: timedelta = timedelta(minutes=1)
    instances: dict[str, _InstanceFacts] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)
    transitions: dict[str, list[tuple[datetime, WorkerState]]] = field(default_factory=dict)
    holds: dict[tuple[str, str], _Hold] = field(default_factory=dict)
    served: list[_Hold] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    decisions: int = 0
    events: int = 0
    live_labs: int = 0  # READY and not yet terminated, now
    drained_by: dict[str, str] = field(default_factory=dict)  # worker id -> actor of its last drain
    templates: dict[str, WorkerTemplateSpec] = field(default_factory=dict)  # registered, not removed
    use_solver: bool = True  # HiGHS for the lower bound's bin packing (else its relaxation)
    bound_steps: list[tuple[datetime, datetime, int]] = field(default_factory=list)  # set by report()

    def observe_all(self, events: Iterable[StoredEvent]) -> None:
        for stored in events:
            self.observe(stored)

    def observe(self, stored: StoredEvent) -> None:
        self.events += 1
        event = stored.event
        if isinstance(event, LabletInstance.Event):
            self._instance(stored.stream_id, event)
        elif isinstance(event, Worker.Event):
            self._worker(stored.stream_id, event)
        elif isinstance(event, WorkerTemplate.Event):
            self._template(stored.stream_id, event)
        elif isinstance(event, ScalingDecision.ScalingDecided):
            self.decisions += 1
            for action in event.actions:
                kind = str(action.get("action") or action.get("kind") or "?")
                if kind != "NoAction":
                    self.actions[kind] = self.actions.get(kind, 0) + int(action.get("count", 1) or 1)

    # -- folding -----------------------------------------------------------------------------
    def _instance(self, instance_id: str, event: Any) -> None:
        if isinstance(event, LabletInstance.InstanceRequested):
            self.instances[instance_id] = _InstanceFacts(event.timestamp, event.timeslot_start, event.timeslot_end,
                                                         event.definition_name, requirements=dict(event.requirements))
            return
        facts = self.instances.get(instance_id)
        if facts is None:
            return
        if isinstance(event, (LabletInstance.InstanceScheduled, LabletInstance.InstanceMoved)):
            facts.worker_id = event.worker_id  # a moved booking's drain is its new worker's
        elif isinstance(event, LabletInstance.InstanceReady) and facts.ready_at is None:
            facts.ready_at = event.timestamp
            self.live_labs += 1
        elif isinstance(event, LabletInstance.UserLoggedIn):
            facts.logged_in = True
        elif isinstance(event, LabletInstance.StopRequested):
            self._lab_end(facts, event, event.reason)
        elif isinstance(event, LabletInstance.CollectionStarted):
            self._lab_end(facts, event, event.trigger)
        elif isinstance(event, LabletInstance.InstanceTerminated):
            facts.ended_at = event.timestamp
            if facts.ready_at is not None:
                self.live_labs -= 1
            facts.termination_reason = getattr(event, "reason", None)
            self._lab_end(facts, event, facts.termination_reason or "")

    def _lab_end(self, facts: _InstanceFacts, event: Any, cause: str) -> None:
        if facts.ready_at is None or facts.first_end is not None:
            return
        drained_by = self.drained_by.get(facts.worker_id or "")
        facts.first_end = LabEnd(event.timestamp, cause, event.actor, drained_by)

    def _template(self, stream_id: str, event: Any) -> None:
        if isinstance(event, WorkerTemplate.WorkerTemplateRemoved):
            self.templates.pop(event.name, None)
        elif hasattr(event, "spec"):
            self.templates[event.name] = WorkerTemplateSpec.from_dict(event.spec)

    def _worker(self, worker_id: str, event: Any) -> None:
        worker = self.workers.get(worker_id)
        before = worker.state if worker is not None else None
        worker = event.mutate(worker)
        self.workers[worker_id] = worker
        if worker.state is not before:
            self.transitions.setdefault(worker_id, []).append((event.timestamp, worker.state))
        if isinstance(event, Worker.DrainingStarted):
            self.drained_by[worker_id] = event.actor
        elif isinstance(event, Worker.DrainCancelled):
            self.drained_by.pop(worker_id, None)
        if isinstance(event, Worker.CapacityReserved):
            self.holds[(worker_id, event.instance_id)] = _Hold(
                worker_id, event.instance_id, Resources.from_dict(event.resources), event.nodes, len(event.ports),
                event.hold_start, event.hold_end)
        elif isinstance(event, Worker.ReservationExtended):
            hold = self.holds.get((worker_id, event.instance_id))
            if hold is not None:
                hold.end = event.hold_end
        elif isinstance(event, Worker.CapacityReleased):
            hold = self.holds.pop((worker_id, event.instance_id), None)
            if hold is not None:
                hold.end = min(hold.end, max(event.timestamp, hold.start))
                if hold.end > hold.start:
                    self.served.append(hold)

    # -- the report --------------------------------------------------------------------------
    def report(self, until: datetime) -> dict[str, Any]:
        booked_waits: list[float] = []
        asap_waits: list[float] = []
        on_time = late = never_ready = no_shows = 0
        reasons: dict[str, int] = {}
        for facts in self.instances.values():
            due = facts.start or facts.requested_at
            if due >= until:
                continue  # its slot is after the run: not a start we could judge
            ready = facts.ready_at
            if ready is None:
                never_ready += 1
                reasons[facts.termination_reason or "still_waiting"] = reasons.get(
                    facts.termination_reason or "still_waiting", 0) + 1
                waited = max((min(facts.ended_at or until, until) - due) / _MINUTE, 0.0)
            else:
                waited = max((ready - due) / _MINUTE, 0.0)
                if not facts.logged_in:
                    no_shows += 1
            if facts.start is None:
                asap_waits.append(waited)
                continue
            booked_waits.append(waited)
            if ready is not None and ready <= facts.start + self.grace:
                on_time += 1
            else:
                late += 1
        all_waits = booked_waits + asap_waits
        cut = interruptions((f.end, f.first_end) for f in self.instances.values())
        cost = self._cost(until)
        worker_hours = cost.worker_hours
        refs, bound = self.references(until)
        self.bound_steps = bound.steps  # W(t), for the report's plot
        return {
            "instances": len([f for f in self.instances.values() if (f.start or f.requested_at) < until]),
            "booked": len(booked_waits),
            "asap": len(asap_waits),
            "on_time": on_time,
            "late": late,
            "on_time_ratio": round(on_time / len(booked_waits), 6) if booked_waits else None,
            "never_ready": never_ready,
            "never_ready_reasons": dict(sorted(reasons.items())),
            "no_shows": no_shows,
            **cut,
            "wait_minutes": _percentiles(all_waits),
            "asap_wait_minutes": _percentiles(asap_waits),
            "worker_hours": round(worker_hours, 4),
            "cost": round(cost.cost, 4),
            "idle_share": round(cost.idle_share, 6),
            **refs,
            "ratio_to_lower_bound": _ratio(worker_hours, refs["lower_bound_hours"]),
            "ratio_to_offline": _ratio(worker_hours, refs["offline_hours"]),
            "per_template": cost.to_dict()["per_template"],
            "workers_used": len(self.workers),
            "scale_actions": dict(sorted(self.actions.items())),
            "scaling_decisions": self.decisions,
            "events": self.events,
        }

    def _cost(self, until: datetime) -> CostReport:
        intervals = []
        hourly: dict[str, float] = {}
        for worker_id, worker in self.workers.items():
            hourly[worker.template_name] = float(worker.template.hourly_cost)
            intervals.extend(state_intervals(worker_id, worker.template_name, self.transitions.get(worker_id, []),
                                             until))
        busy: dict[str, list[tuple[datetime, datetime]]] = {}
        for hold in [*self.served, *self.holds.values()]:
            end = min(hold.end, until)
            if end > hold.start:
                busy.setdefault(hold.worker_id, []).append((hold.start, end))
        return fleet_cost(intervals, hourly, busy)

    def references(self, until: datetime) -> tuple[dict[str, Any], LowerBound]:
        """The lower bound, the offline schedule and the hours' breakdown (``references``)."""
        templates = {w.template_name: w.template for w in self.workers.values()}
        templates.update(self.templates)
        held = []
        for hold in [*self.served, *self.holds.values()]:
            facts = self.instances.get(hold.instance_id)
            kind = LabKind.of(hold.resources.to_dict(), hold.nodes, hold.ports, facts.requirements if facts else {})
            held.append(HeldLab(hold.worker_id, hold.instance_id, kind, hold.start, hold.end))
        return references(held, self.transitions, list(templates.values()), until, use_solver=self.use_solver)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 3)

    return {"p50": pick(0.50), "p95": pick(0.95), "max": round(ordered[-1], 3),
            "mean": round(sum(ordered) / len(ordered), 3)}


def _ratio(value: float, bound: float) -> float | None:
    return round(value / bound, 4) if bound > 0 else None
