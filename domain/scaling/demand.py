"""Summaries of demand and capacity: the inputs part of a ``ScalingDecided`` payload."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from domain.ledger import sweep_peaks
from domain.resources import ZERO, Resources
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings


def split_queued(
    now: datetime, demand: Iterable[DemandItem], settings: ScalingSettings
) -> tuple[list[DemandItem], list[DemandItem]]:
    """Queued items needed within the horizon, and those needed later (ignored for now)."""
    within, beyond = [], []
    limit = now + settings.horizon
    for item in demand:
        if not item.queued:
            continue
        (within if item.needed_by(settings.instantiation_lead) <= limit else beyond).append(item)
    return within, beyond


def demand_peak(items: Sequence[DemandItem]) -> tuple[Resources, int]:
    """Highest simultaneous need of these items (per field), over their own windows.

    The ledger's own sweep (``sweep_peaks``) over the items' span, without building a ledger
    (this runs in every plan): the same points in the same order (by hold start, then
    instance id), so the same sums (tests/domain/scaling/test_demand_peak.py)."""
    if not items:
        return ZERO, 0
    end = max(i.hold_end for i in items)
    points: list[tuple[datetime, float, float, float, int]] = []
    for item in sorted(items, key=lambda i: (i.hold_start, i.instance_id)):
        r = item.requirements
        points.append((item.hold_start, r.cpu_cores, r.memory_gb, r.storage_gb, item.node_count))
        if item.hold_end < end:
            points.append((item.hold_end, -r.cpu_cores, -r.memory_gb, -r.storage_gb, -item.node_count))
    (best_cpu, _), (best_mem, _), (best_sto, _), (best_nodes, _) = sweep_peaks(points, items[0].hold_start)
    return Resources(best_cpu, best_mem, best_sto), int(round(best_nodes))


def capacity_by_state(fleet: Iterable[FleetWorker]) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for worker in sorted(fleet, key=lambda w: w.worker_id):
        entry = totals.setdefault(worker.state.value, {"workers": 0, "capacity": ZERO, "nodes": 0})
        entry["workers"] += 1
        entry["capacity"] = entry["capacity"] + worker.capacity
        entry["nodes"] += worker.max_nodes
    return {
        state: {"workers": e["workers"], "capacity": e["capacity"].to_dict(), "nodes": e["nodes"]}
        for state, e in sorted(totals.items())
    }


def minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 2)


def demand_summary(
    now: datetime,
    fleet: Sequence[FleetWorker],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
) -> dict[str, Any]:
    within, beyond = split_queued(now, demand, settings)
    peak, nodes = demand_peak(within)
    live_reservations = sum(len(ends) - bisect_right(ends, now) for ends in (w.hold_ends for w in fleet))
    needs = [i.needed_by(settings.instantiation_lead) for i in within]
    return {
        "queued": len(within) + len(beyond),
        "queued_within_horizon": len(within),
        "queued_beyond_horizon": len(beyond),
        "booked": live_reservations,
        "queued_peak": {"resources": peak.to_dict(), "nodes": nodes},
        "earliest_need": min(needs).isoformat() if needs else None,
    }
