"""The two references a run's worker-hours are compared with (SPEC §9), and where its
hours went.

The labs are the reservations the run served, each clipped to the time its worker was up
(RUNNING or DRAINING): a hold on a worker still booting, or on one that failed to boot,
held nothing a lab used. Over those ``LabSpan``s, whatever worker they were on:

- ``lower_bound``: no policy can serve them with fewer worker-hours (``lower_bound.py``);
- ``offline``: what a clairvoyant best-fit planner spends on them (``offline.py``);
- ``hours_breakdown``: the run's billed hours as ``boot`` (PROVISIONING), ``idle`` (up,
  holding no lab) and ``busy`` (up, holding at least one); ``partial_fill`` = busy minus the
  bound's per-instant term — the hours spent because busy workers were not packed full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.scaling.cost import state_intervals
from domain.worker import WorkerState
from processors.simulation.capacity import LabKind, LabSpan, WorkerKind
from processors.simulation.lower_bound import LowerBound, lower_bound
from processors.simulation.offline import offline_schedule

_HOUR = timedelta(hours=1)
_UP = frozenset({WorkerState.RUNNING, WorkerState.DRAINING})


@dataclass(frozen=True)
class HeldLab:
    """One reservation as served: on ``worker_id`` over ``[start, end)``."""

    worker_id: str
    lab_id: str
    kind: LabKind
    start: datetime
    end: datetime


def _clip(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
    for s, e in spans:
        lo, hi = max(s, start), min(e, end)
        if hi > lo:
            yield lo, hi


def _union_hours(pieces: Iterable[tuple[datetime, datetime]]) -> float:
    total, reach = timedelta(0), None
    for s, e in sorted(pieces):
        if reach is None or s > reach:
            total += e - s
            reach = e
        elif e > reach:
            total += e - reach
            reach = e
    return total / _HOUR


def references(held: Iterable[HeldLab], transitions: Mapping[str, Sequence[tuple[datetime, WorkerState]]],
               templates: Sequence[Any], until: datetime, *, use_solver: bool = True) -> tuple[dict[str, Any], LowerBound]:
    """KPI fields ``lower_bound_hours``, ``lower_bound``, ``offline_hours``, ``offline``,
    ``hours_breakdown`` (and the bound itself, for plots). ``templates``: the registered
    ``WorkerTemplateSpec``s — every template a policy could have used, not only those it did."""
    up: dict[str, list[tuple[datetime, datetime]]] = {}
    boot_hours = 0.0
    first_boots: list[float] = []
    already_up = 0
    for worker_id, changes in transitions.items():
        intervals = state_intervals(worker_id, "", list(changes), until)
        up[worker_id] = [(i.start, i.end) for i in intervals if i.state in _UP]
        boot_hours += sum(i.hours for i in intervals if i.state is WorkerState.PROVISIONING)
        if intervals and intervals[0].state in _UP:
            already_up += 1  # up before the log began: its boot is not in it
        first = next((i for i in intervals if i.state is WorkerState.PROVISIONING), None)
        if first is not None and any(i.state in _UP and i.start >= first.end for i in intervals):
            first_boots.append(first.hours)
    spans: list[LabSpan] = []
    busy: dict[str, list[tuple[datetime, datetime]]] = {}
    for lab in held:
        for lo, hi in _clip(up.get(lab.worker_id, []), lab.start, min(lab.end, until)):
            spans.append(LabSpan(lab.lab_id, lab.kind, lo, hi))
            busy.setdefault(lab.worker_id, []).append((lo, hi))
    kinds = [WorkerKind.from_spec(t) for t in templates]
    bound = lower_bound(spans, kinds, shortest_boot_hours=min(first_boots, default=None), already_up=already_up,
                        use_solver=use_solver)
    offline = offline_schedule(spans, kinds)
    up_hours = sum((e - s) / _HOUR for pieces in up.values() for s, e in pieces)
    busy_hours = sum(_union_hours(pieces) for pieces in busy.values())
    breakdown = {"boot": round(boot_hours, 4), "idle": round(up_hours - busy_hours, 4), "busy": round(busy_hours, 4),
                 "partial_fill": round(max(0.0, busy_hours - bound.capacity_hours), 4),
                 "boot_beyond_bound": round(max(0.0, boot_hours - bound.boot_hours), 4)}
    return ({"lower_bound_hours": round(bound.hours, 4), "lower_bound": bound.to_dict(),
             "offline_hours": round(offline.hours, 4), "offline": offline.to_dict(),
             "hours_breakdown": breakdown}, bound)
