"""Fleet cost, and the holds as placed packed perfectly: how a fleet's worker-hours are scored (SPEC §9, §10).

Billing: a worker costs its template's ``hourly_cost`` for every hour it spends in a
billed state — PROVISIONING (the cloud VM is up while CML boots), RUNNING and DRAINING.
PENDING (decided, not launched), STOPPING, STOPPED, TERMINATED and FAILED are not billed
(a stopped instance's disk is ignored).

Idle share = billed hours during which the worker held no reservation / billed hours.

Packed as placed, per template, given the reservations actually served on it:

    LB = max_r( sum_i q_i,r * d_i / C_r )  +  N * startup_hours
         r in {cpu, memory, nodes}          N = max_r ceil( peak_r / C_r )

where q_i,r is reservation i's share of resource r, d_i its hold in hours, C_r one
worker's capacity, peak_r the highest simultaneous use: the capacity-hours the labs held on
that template, packed perfectly by their dominant resource, plus one boot per worker needed
at the busiest instant. It depends on where the policy placed the labs (and pools the hours
over the whole day), so it is a reference for that placement, **not** a bound on what a
better one needs: the valid bound is ``domain.scaling.instant_bound`` (live report) and the
simulator's exact one (``processors/simulation/lower_bound.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.ledger import Reservation, ReservationLedger
from domain.resources import Resources
from domain.scaling.inputs import TemplateOffer, WorkerState

BILLED_STATES = frozenset({WorkerState.PROVISIONING, WorkerState.RUNNING, WorkerState.DRAINING})
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class StateInterval:
    """A worker in one state over ``[start, end)``."""

    worker_id: str
    template: str
    state: WorkerState
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return max(self.end - self.start, timedelta(0)) / _HOUR

    @property
    def billed(self) -> bool:
        return self.state in BILLED_STATES


def state_intervals(
    worker_id: str,
    template: str,
    transitions: Sequence[tuple[datetime, WorkerState | str]],
    until: datetime,
) -> list[StateInterval]:
    """Intervals from a worker's state changes (each ``(at, new_state)``), the last one open until ``until``."""
    ordered = sorted(((at, WorkerState(state)) for at, state in transitions), key=lambda t: t[0])
    intervals = []
    for (start, state), nxt in zip(ordered, [*ordered[1:], (until, None)]):
        end = min(nxt[0], until)
        if end > start:
            intervals.append(StateInterval(worker_id, template, state, start, end))
    return intervals


def _union(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlap_hours(start: datetime, end: datetime, spans: list[tuple[datetime, datetime]]) -> float:
    total = timedelta(0)
    for s, e in spans:
        lo, hi = max(s, start), min(e, end)
        if hi > lo:
            total += hi - lo
    return total / _HOUR


@dataclass(frozen=True)
class TemplateCost:
    template: str
    worker_hours: float
    cost: float
    idle_hours: float
    workers: int

    @property
    def idle_share(self) -> float:
        return self.idle_hours / self.worker_hours if self.worker_hours else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "worker_hours": round(self.worker_hours, 6),
            "cost": round(self.cost, 6),
            "idle_hours": round(self.idle_hours, 6),
            "idle_share": round(self.idle_share, 6),
            "workers": self.workers,
        }


@dataclass(frozen=True)
class CostReport:
    per_template: dict[str, TemplateCost]

    @property
    def worker_hours(self) -> float:
        return sum(t.worker_hours for t in self.per_template.values())

    @property
    def cost(self) -> float:
        return sum(t.cost for t in self.per_template.values())

    @property
    def idle_share(self) -> float:
        billed = self.worker_hours
        return sum(t.idle_hours for t in self.per_template.values()) / billed if billed else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker_hours": round(self.worker_hours, 6),
            "cost": round(self.cost, 6),
            "idle_share": round(self.idle_share, 6),
            "per_template": {name: t.to_dict() for name, t in sorted(self.per_template.items())},
        }


def fleet_cost(
    intervals: Iterable[StateInterval],
    hourly_cost: Mapping[str, float],
    busy: Mapping[str, Iterable[tuple[datetime, datetime]]] | None = None,
) -> CostReport:
    """Worker-hours, cost and idle hours per template.

    ``busy`` maps a worker id to the spans during which it held a reservation (its
    reservations' holds); billed time outside them is idle.
    """
    busy_spans = {worker: _union(spans) for worker, spans in (busy or {}).items()}
    hours: dict[str, float] = {}
    idle: dict[str, float] = {}
    workers: dict[str, set[str]] = {}
    for interval in intervals:
        if not interval.billed:
            continue
        h = interval.hours
        hours[interval.template] = hours.get(interval.template, 0.0) + h
        held = _overlap_hours(interval.start, interval.end, busy_spans.get(interval.worker_id, []))
        idle[interval.template] = idle.get(interval.template, 0.0) + max(0.0, h - held)
        workers.setdefault(interval.template, set()).add(interval.worker_id)
    return CostReport(
        {
            name: TemplateCost(name, h, h * float(hourly_cost.get(name, 0.0)), idle[name], len(workers[name]))
            for name, h in sorted(hours.items())
        }
    )


def busy_spans(reservations: Iterable[Reservation]) -> list[tuple[datetime, datetime]]:
    return _union((r.hold_start, r.hold_end) for r in reservations)


@dataclass(frozen=True)
class LowerBound:
    template: str
    reserved_hours: dict[str, float]  # per resource: sum of share x hours (cpu core-hours, GB-hours, node-hours)
    capacity_bound_hours: float  # max over resources of reserved_hours / capacity
    workers_at_peak: int
    boot_hours: float

    @property
    def worker_hours(self) -> float:
        return self.capacity_bound_hours + self.boot_hours

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "reserved_hours": {k: round(v, 6) for k, v in self.reserved_hours.items()},
            "capacity_bound_hours": round(self.capacity_bound_hours, 6),
            "workers_at_peak": self.workers_at_peak,
            "boot_hours": round(self.boot_hours, 6),
            "worker_hours": round(self.worker_hours, 6),
        }


def lower_bound(template: TemplateOffer, reservations: Iterable[Reservation]) -> LowerBound:
    """These reservations, as placed on this template, packed perfectly (see the module docstring: no bound)."""
    held = list(reservations)
    capacity = {"cpu_cores": template.capacity.cpu_cores, "memory_gb": template.capacity.memory_gb, "nodes": float(template.max_nodes)}
    reserved = {name: 0.0 for name in capacity}
    for r in held:
        h = r.duration / _HOUR
        reserved["cpu_cores"] += r.resources.cpu_cores * h
        reserved["memory_gb"] += r.resources.memory_gb * h
        reserved["nodes"] += r.nodes * h
    bound = max((reserved[k] / c for k, c in capacity.items() if c > 0), default=0.0)
    workers = 0
    if held:
        ledger = ReservationLedger(Resources(1e15, 1e15, 1e15), 10**12, (1, 65535))
        for r in held:
            ledger.add(Reservation(r.instance_id, r.resources, r.nodes, {}, r.hold_start, r.hold_end), verify=False)
        peak, nodes = ledger.peak(min(r.hold_start for r in held), max(r.hold_end for r in held))
        peaks = {"cpu_cores": peak.cpu_cores, "memory_gb": peak.memory_gb, "nodes": float(nodes)}
        workers = max(math.ceil(peaks[k] / c - 1e-9) for k, c in capacity.items() if c > 0)
    return LowerBound(
        template=template.name,
        reserved_hours=reserved,
        capacity_bound_hours=bound,
        workers_at_peak=workers,
        boot_hours=workers * template.startup / _HOUR,
    )


def lower_bounds(
    templates: Iterable[TemplateOffer], reservations_by_template: Mapping[str, Iterable[Reservation]]
) -> dict[str, LowerBound]:
    by_name = {t.name: t for t in templates}
    return {
        name: lower_bound(by_name[name], held)
        for name, held in sorted(reservations_by_template.items())
        if name in by_name
    }
