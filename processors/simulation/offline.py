"""The clairvoyant offline schedule (``offline_hours``, SPEC §9): what a planner that knew
every booking in advance would spend on the same labs.

The planner takes the labs in order of start (ties: the biggest, then the longest first) and puts each on
the already planned worker where it costs the fewest extra worker-hours (ties: the fullest
then, then the oldest), checking capacity exactly in every dimension over the lab's whole
span; when none can hold it, it plans a new worker of the eligible template that holds the
most such labs (ties: the cheaper, then by name). Boots are nominal: a worker is billed
``startup_minutes`` before its first lab and, across a gap, stays up when the gap is shorter
than ``restart_minutes`` and otherwise stops and restarts in time (billed the restart).

Because labs arrive in start order, every lab already on a worker started no later than
the new one, so the worker's load over the new span is highest at its start: the exact check
is the sum of the labs still active then. It is a heuristic (best-fit is not optimal), so
it sits at or above the lower bound; by how much says how good the bound is.

``placed_by`` (lab id → end) places each lab as if it held its worker until that end (the
booked hold: slot end plus teardown margin, what an online scheduler must reserve) while
billing only the span it was served: the same planner knowing every booking but not how
early each ends nor that teardown was instant (``scripts/bench hold_rule``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from processors.simulation.capacity import LabSpan, Vector, WorkerKind, add, fits

_HOUR = timedelta(hours=1)


@dataclass
class _Planned:
    number: int
    kind: WorkerKind
    active: list[tuple[float, Vector]] = field(default_factory=list)  # (end, need) of labs not yet ended
    last_end: float = float("-inf")  # hours, of the placement spans
    pieces: list[tuple[float, float]] = field(default_factory=list)  # the billed spans (hours)
    busy: float = 0.0
    bridged: float = 0.0  # gaps it stayed up through
    restarts: int = 0

    def load_at(self, at: float) -> Vector:
        self.active = [(end, need) for end, need in self.active if end > at]
        total: Vector = tuple(0.0 for _ in self.kind.capacity)
        for _, need in self.active:
            total = add(total, need)
        return total

    def extra_hours(self, start: float, end: float) -> float:
        if start <= self.last_end:
            return max(0.0, end - self.last_end)
        return min(start - self.last_end, self.kind.restart_hours) + (end - start)

    def take(self, start: float, end: float, need: Vector, billed_end: float) -> None:
        self.last_end = max(self.last_end, end)
        self.active.append((end, need))
        self.pieces.append((start, billed_end))

    def bill(self) -> None:
        """Busy, bridged and restarts from the billed spans (taken in start order)."""
        reach = float("-inf")
        for start, end in sorted(self.pieces):
            if start <= reach:
                self.busy += max(0.0, end - reach)
            else:
                gap = start - reach if reach > float("-inf") else 0.0
                if gap > self.kind.restart_hours:
                    self.restarts += 1
                else:
                    self.bridged += gap
                self.busy += end - start
            reach = max(reach, end)

    @property
    def hours(self) -> float:
        return self.kind.startup_hours + self.busy + self.bridged + self.restarts * self.kind.restart_hours


@dataclass(frozen=True)
class OfflineSchedule:
    hours: float
    workers: int
    boot_hours: float  # first boots and restarts
    busy_hours: float  # holding at least one lab
    bridged_hours: float  # up and empty across gaps shorter than a restart
    per_template: dict[str, dict[str, float]]
    unplaceable: int = 0  # labs no template can hold (left out)

    def to_dict(self) -> dict[str, Any]:
        return {"hours": round(self.hours, 4), "workers": self.workers, "boot_hours": round(self.boot_hours, 4),
                "busy_hours": round(self.busy_hours, 4), "bridged_hours": round(self.bridged_hours, 4),
                "per_template": self.per_template, "unplaceable": self.unplaceable}


def offline_schedule(spans: Sequence[LabSpan], workers: Sequence[WorkerKind],
                     placed_by: Mapping[str, datetime] | None = None) -> OfflineSchedule:
    if not spans:
        return OfflineSchedule(0.0, 0, 0.0, 0.0, 0.0, {})
    origin = min(s.start for s in spans)

    def hours(moment: datetime) -> float:
        return (moment - origin) / _HOUR

    def size(span: LabSpan) -> float:
        tops = [max(w.capacity[r] for w in workers) for r in range(len(span.kind.need))]
        return max((q / t for q, t in zip(span.kind.need, tops) if t > 0), default=0.0)

    planned: list[_Planned] = []
    unplaceable = 0
    for span in sorted((s for s in spans if s.end > s.start), key=lambda s: (s.start, -size(s), -s.end.timestamp(), s.lab_id)):
        eligible = [w for w in workers if span.kind.eligible(w)]
        if not eligible:
            unplaceable += 1
            continue
        start, billed_end, need = hours(span.start), hours(span.end), span.kind.need
        end = max(billed_end, hours(placed_by[span.lab_id])) if placed_by and span.lab_id in placed_by else billed_end
        best: tuple[float, float, int] | None = None
        chosen: _Planned | None = None
        for worker in planned:
            if worker.kind not in eligible:
                continue
            load = worker.load_at(start)
            if not fits(add(load, need), worker.kind.capacity):
                continue
            fullness = max((u / c for u, c in zip(load, worker.kind.capacity) if c > 0), default=0.0)
            score = (worker.extra_hours(start, end), -fullness, worker.number)
            if best is None or score < best:
                best, chosen = score, worker
        if chosen is None:
            kind = max(eligible, key=lambda w: (span.kind.copies_in(w), -w.hourly_cost, w.name))
            chosen = _Planned(len(planned), kind)
            planned.append(chosen)
        chosen.take(start, end, need, billed_end)
    for worker in planned:
        worker.bill()
    per_template: dict[str, dict[str, float]] = {}
    for worker in planned:
        row = per_template.setdefault(worker.kind.name, {"workers": 0, "hours": 0.0})
        row["workers"] += 1
        row["hours"] = round(row["hours"] + worker.hours, 4)
    return OfflineSchedule(
        hours=sum(w.hours for w in planned), workers=len(planned),
        boot_hours=sum(w.kind.startup_hours + w.restarts * w.kind.restart_hours for w in planned),
        busy_hours=sum(w.busy for w in planned), bridged_hours=sum(w.bridged for w in planned),
        per_template=dict(sorted(per_template.items())), unplaceable=unplaceable)
