"""A valid lower bound on worker-hours: no policy serving these labs can use fewer
(SPEC §9), whatever it places where.

    LB = integral over t of W(t) dt  +  max(0, max_t W(t) - already_up) x shortest boot

``W(t)`` is the fewest workers, of any eligible templates, that can hold the labs active at
``t`` (``fewest_workers``: exact bin packing in every dimension, or a proven lower bound of
it). Why it is a bound: at every instant the labs then held sit on workers that are up
(RUNNING or DRAINING), so at least ``W(t)`` workers are billed then; on top of that, at
least ``max_t W(t)`` distinct workers ran, and each one booted (PROVISIONING, billed, and
holding no running lab) at least once, for no less than the shortest boot. Only workers
already up when the log begins (``already_up``, none in a simulation) skip that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from processors.simulation.capacity import LabKind, LabSpan, WorkerKind
from processors.simulation.fewest_workers import FewestWorkers

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class LowerBound:
    capacity_hours: float  # integral of W(t)
    boot_hours: float
    peak_workers: int
    exact_share: float  # share of the capacity hours whose W(t) is proven optimal (1.0: all)
    solver: str  # "highs" or "none" (the relaxation only)
    steps: list[tuple[datetime, datetime, int]] = field(default_factory=list, repr=False)  # W(t) piecewise

    @property
    def hours(self) -> float:
        return self.capacity_hours + self.boot_hours

    def to_dict(self) -> dict[str, Any]:
        return {"hours": round(self.hours, 4), "capacity_hours": round(self.capacity_hours, 4),
                "boot_hours": round(self.boot_hours, 4), "peak_workers": self.peak_workers,
                "exact_share": round(self.exact_share, 4), "solver": self.solver}


def active_counts(spans: Sequence[LabSpan]) -> list[tuple[datetime, datetime, dict[LabKind, int]]]:
    """The labs active over each piece of time, as counts per kind (pieces where none is active left out)."""
    changes: dict[datetime, dict[LabKind, int]] = {}
    for span in spans:
        if span.end <= span.start:
            continue
        for at, step in ((span.start, 1), (span.end, -1)):
            moment = changes.setdefault(at, {})
            moment[span.kind] = moment.get(span.kind, 0) + step
    pieces = []
    counts: dict[LabKind, int] = {}
    moments = sorted(changes)
    for at, following in zip(moments, moments[1:]):
        for kind, step in changes[at].items():
            counts[kind] = counts.get(kind, 0) + step
        active = {k: n for k, n in counts.items() if n > 0}
        if active:
            pieces.append((at, following, active))
    return pieces


def lower_bound(spans: Sequence[LabSpan], workers: Sequence[WorkerKind], *, shortest_boot_hours: float | None = None,
                already_up: int = 0, use_solver: bool = True, time_limit: float = 2.0) -> LowerBound:
    kinds = list(dict.fromkeys(s.kind for s in spans))
    fewest = FewestWorkers(workers, kinds, use_solver=use_solver, time_limit=time_limit)
    capacity = exact = 0.0
    peak = 0
    steps = []
    for start, end, counts in active_counts(spans):
        needed = fewest(counts)
        hours = (end - start) / _HOUR
        capacity += needed.workers * hours
        if needed.exact:
            exact += needed.workers * hours
        peak = max(peak, needed.workers)
        steps.append((start, end, needed.workers))
    eligible = [w for w in workers if any(k.eligible(w) for k in kinds)]
    boot = min((w.startup_hours for w in eligible), default=0.0)
    if shortest_boot_hours is not None:
        boot = min(boot, shortest_boot_hours)
    return LowerBound(capacity, max(0, peak - already_up) * boot, peak, exact / capacity if capacity else 1.0,
                      fewest.solver, steps)
