"""A valid lower bound on worker-hours for the live fleet-cost report, whatever the placement.

The simulator's bound (``processors/simulation/lower_bound.py``) packs the labs active at each
instant exactly (HiGHS); this one is its cheap relaxation, computed from the holds served so
far on every ``GET /fleet/cost``:

    W(t) = max over r in (cpu, memory, storage, nodes) of
               max( ceil( sum_i q_i,r / C_r ),  #{ i : q_i,r > C_r / 2 } )
    LB   = integral of W(t) dt  +  max_t W(t) x the shortest boot

``C_r`` is the largest capacity in ``r`` of any template offered (each dimension's largest may
come from a different template: that only lowers the bound). Why it is a bound: the labs held
at ``t`` sit on workers that are up, no worker holds more than ``C_r`` of ``r``, and no two labs
that each need more than half of the largest ``C_r`` share one; at least ``max_t W(t)`` workers
ran, and each booted at least once. Licences, nested virtualisation and ports are left out
(fewer constraints, a lower bound), and so are restarts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.ledger import Reservation
from domain.scaling.inputs import TemplateOffer

_HOUR = timedelta(hours=1)
_EPS = 1e-9


@dataclass(frozen=True)
class InstantBound:
    capacity_hours: float  # integral of W(t)
    boot_hours: float
    peak_workers: int

    @property
    def hours(self) -> float:
        return self.capacity_hours + self.boot_hours

    def to_dict(self) -> dict[str, Any]:
        return {"hours": round(self.hours, 6), "capacity_hours": round(self.capacity_hours, 6),
                "boot_hours": round(self.boot_hours, 6), "peak_workers": self.peak_workers,
                "method": "relaxation"}


def _needs(reservation: Reservation) -> tuple[float, float, float, float]:
    r = reservation.resources
    return (r.cpu_cores, r.memory_gb, r.storage_gb, float(reservation.nodes))


def _largest(templates: Sequence[TemplateOffer]) -> tuple[float, float, float, float]:
    return (max(t.capacity.cpu_cores for t in templates), max(t.capacity.memory_gb for t in templates),
            max(t.capacity.storage_gb for t in templates), float(max(t.max_nodes for t in templates)))


def workers_needed(needs: Iterable[tuple[float, ...]], largest: tuple[float, ...]) -> int:
    """The relaxation's W for labs active together (each a need per dimension)."""
    active = list(needs)
    if not active:
        return 0
    fewest = 1
    for dim, capacity in enumerate(largest):
        if capacity <= 0:
            continue
        total = sum(need[dim] for need in active)
        over_half = sum(1 for need in active if need[dim] > capacity / 2 + _EPS)
        fewest = max(fewest, math.ceil(total / capacity - _EPS), over_half)
    return fewest


def instant_lower_bound(templates: Sequence[TemplateOffer], reservations: Iterable[Reservation]) -> InstantBound:
    held = [r for r in reservations if r.hold_end > r.hold_start]
    if not held or not templates:
        return InstantBound(0.0, 0.0, 0)
    largest = _largest(templates)
    changes: dict[datetime, list[tuple[int, int]]] = {}
    for index, r in enumerate(held):  # by index: one instance may hold twice (moved, extended)
        changes.setdefault(r.hold_start, []).append((1, index))
        changes.setdefault(r.hold_end, []).append((-1, index))
    active: dict[int, tuple[float, ...]] = {}
    moments = sorted(changes)
    capacity_hours = 0.0
    peak = 0
    for at, following in zip(moments, moments[1:]):
        for step, index in changes[at]:
            if step > 0:
                active[index] = _needs(held[index])
            else:
                active.pop(index, None)
        needed = workers_needed(active.values(), largest)
        capacity_hours += needed * ((following - at) / _HOUR)
        peak = max(peak, needed)
    shortest_boot = min(t.startup for t in templates) / _HOUR
    return InstantBound(capacity_hours, peak * shortest_boot, peak)
