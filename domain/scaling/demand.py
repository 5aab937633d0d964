"""Summaries of demand and capacity: the inputs part of a ``ScalingDecided`` payload."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from domain.ledger import Reservation, ReservationLedger
from domain.resources import ZERO, Resources
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings

_UNBOUNDED = Resources(1e15, 1e15, 1e15)


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
    """Highest simultaneous need of these items (per field), over their own windows."""
    if not items:
        return ZERO, 0
    ledger = ReservationLedger(_UNBOUNDED, 10**12, (1, 65535))
    for item in items:
        ledger.add(
            Reservation(item.instance_id, item.requirements, item.node_count, {}, item.hold_start, item.hold_end),
            verify=False,
        )
    start = min(i.hold_start for i in items)
    end = max(i.hold_end for i in items)
    return ledger.peak(start, end)


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
    live_reservations = sum(1 for w in fleet for r in w.reservations if r.hold_end > now)
    needs = [i.needed_by(settings.instantiation_lead) for i in within]
    return {
        "queued": len(within) + len(beyond),
        "queued_within_horizon": len(within),
        "queued_beyond_horizon": len(beyond),
        "booked": live_reservations,
        "queued_peak": {"resources": peak.to_dict(), "nodes": nodes},
        "earliest_need": min(needs).isoformat() if needs else None,
    }
