"""AddedHours: prefer the worker where the booking adds the fewest billed worker-hours.

Bin-packing looks at how full a worker is over the hold window; it does not see *when*
the worker is up. A worker is billed for its busy stretches: runs of holds with gaps
shorter than the stop break-even between them (the autoscaler keeps it up across those)
plus a wake-up (restart and margin) before each stretch. A hold inside an existing
stretch costs nothing more; one that sticks out of a stretch costs the part that sticks
out; one far from every hold starts a new stretch and costs its whole length plus a
wake-up. This is the clairvoyant offline planner's rule (``extra_hours``), applied as
bookings arrive.

Pure: it reads only the candidate's ledger near the window (reservations within
``bridge`` of the hold: nothing farther can merge with it, and anything between two
such reservations overlaps that span too, so the local stretches are the real ones).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.placement.candidate import BECOMING_READY_STATES, RUNNING, STOPPED, WorkerCandidate
from domain.placement.request import PlacementRequest

#: the autoscaler's defaults: restart 5 min + scale-up margin 5 min to wake a worker;
#: it stops across a gap only when down >= stop_min_saving (15 min) after that
DEFAULT_WAKE = timedelta(minutes=10)
DEFAULT_BRIDGE = timedelta(minutes=25)
_UP_NOW = (BECOMING_READY_STATES - {STOPPED}) | {RUNNING}


def added_hours(
    request: PlacementRequest,
    candidate: WorkerCandidate,
    *,
    wake: timedelta = DEFAULT_WAKE,
    bridge: timedelta = DEFAULT_BRIDGE,
) -> float:
    """Billed hours the worker's busy stretches grow by when it takes the request's hold."""
    start, end = request.hold_start, request.hold_end
    near = candidate.ledger.overlapping(start - bridge, end + bridge) if len(candidate.ledger) else []
    # A worker up now (or booting now) taking an ASAP hold needs no wake-up of its own.
    wake_cost = 0.0 if request.is_asap and candidate.state in _UP_NOW else wake.total_seconds()
    if not near:
        return ((end - start).total_seconds() + wake_cost) / 3600.0
    stretches = _stretches([(r.hold_start, r.hold_end) for r in near], bridge)
    # every local stretch is within `bridge` of the hold: they all merge with it into one
    low = min(start, stretches[0][0])
    high = max(end, max(e for _, e in stretches))
    before = sum((e - s).total_seconds() for s, e in stretches) + len(stretches) * wake.total_seconds()
    after = (high - low).total_seconds() + wake.total_seconds()
    return max(0.0, after - before) / 3600.0


def _stretches(spans: list[tuple[datetime, datetime]], bridge: timedelta) -> list[list[datetime]]:
    """Spans (sorted by start) merged across gaps shorter than ``bridge``."""
    merged: list[list[datetime]] = []
    for s, e in sorted(spans):
        if merged and s - merged[-1][1] < bridge:
            if e > merged[-1][1]:
                merged[-1][1] = e
        else:
            merged.append([s, e])
    return merged


class AddedHours:
    """``100 × (1 − added / most)``, rounded to 4 decimals: 100 when the hold falls inside
    an existing busy stretch, 0 for a whole new stretch (``most`` = the hold's length plus
    the larger of the wake-up and two bridges: the most a hold can add, whether it starts
    a stretch, extends one or joins two)."""

    name = "AddedHours"

    def __init__(
        self, weight: float = 1.0, *, wake: timedelta = DEFAULT_WAKE, bridge: timedelta = DEFAULT_BRIDGE
    ) -> None:
        if wake < timedelta(0) or bridge < timedelta(0):
            raise ValueError("wake and bridge must not be negative")
        self.weight = weight
        self.wake = wake
        self.bridge = bridge

    def score(self, request: PlacementRequest, candidate: WorkerCandidate) -> float:
        added = added_hours(request, candidate, wake=self.wake, bridge=self.bridge)
        most = ((request.hold_end - request.hold_start) + max(self.wake, 2 * self.bridge)).total_seconds() / 3600.0
        return round(100.0 * min(1.0, max(0.0, 1.0 - added / most)), 4)
