"""A worker's ledger summarised per 15-minute bucket (the booking grid): the shortlist's bounds.

For every bucket a worker holds something in, the peak cpu, memory and nodes reserved at
any instant of that bucket. Over a window, each field's largest bucket peak is an upper
bound of the window's peak; when the window is a union of buckets (bookings are) it *is*
the window's peak.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from domain.placement import WorkerCandidate

BUCKET = timedelta(minutes=15)  # the booking grid: aligned windows are unions of buckets
BUCKET_SECONDS = BUCKET.total_seconds()

Peaks = tuple[float, float, int]  # cpu, memory, nodes


def bucket_of(moment: datetime) -> int:
    return math.floor(moment.timestamp() / BUCKET_SECONDS)


def buckets(start: datetime, end: datetime) -> range:
    """The buckets ``[start, end)`` touches."""
    return range(bucket_of(start), math.floor((end.timestamp() - 1e-6) / BUCKET_SECONDS) + 1)


def aligned(start: datetime, end: datetime) -> bool:
    """The window is a union of buckets (its bucket peaks are its exact peaks)."""
    return start.timestamp() % BUCKET_SECONDS == 0 and end.timestamp() % BUCKET_SECONDS == 0


def bucket_peaks(candidate: WorkerCandidate) -> dict[int, Peaks] | None:
    """Per bucket with holds: peak cpu, memory and nodes (one sweep over the holds' start
    and end points). None: never prune this worker."""
    ledger = candidate.ledger
    capacity = ledger.capacity
    if capacity.cpu_cores <= 0 or capacity.memory_gb <= 0 or candidate.node_limit <= 0:
        return None
    points: list[tuple[float, float, float, int]] = []
    for r in ledger.reservations():
        res = r.resources
        points.append((r.hold_start.timestamp(), res.cpu_cores, res.memory_gb, r.nodes))
        points.append((r.hold_end.timestamp(), -res.cpu_cores, -res.memory_gb, -r.nodes))
    points.sort(key=lambda point: point[0])
    peaks: dict[int, Peaks] = {}
    cpu = memory = 0.0
    nodes = 0
    i, count = 0, len(points)
    while i < count:
        t = points[i][0]
        while i < count and points[i][0] == t:  # an end and a start at t are back to back
            cpu, memory, nodes = cpu + points[i][1], memory + points[i][2], nodes + points[i][3]
            i += 1
        if i == count or (cpu <= 0 and memory <= 0 and nodes <= 0):
            continue
        # usage is constant over [t, next point): raise the peak of every bucket it touches
        last = math.floor((points[i][0] - 1e-6) / BUCKET_SECONDS)
        for bucket in range(math.floor(t / BUCKET_SECONDS), last + 1):
            old = peaks.get(bucket)
            peaks[bucket] = (cpu, memory, nodes) if old is None else (
                max(old[0], cpu), max(old[1], memory), max(old[2], nodes))
    return peaks


def window_peaks(peaks: dict[int, Peaks], first: int, end: int) -> Peaks:
    """Per field, the largest bucket peak over buckets ``[first, end)``."""
    get = peaks.get
    cpu = memory = 0.0
    nodes = 0
    for bucket in range(first, end):
        peak = get(bucket)
        if peak is not None:
            if peak[0] > cpu:
                cpu = peak[0]
            if peak[1] > memory:
                memory = peak[1]
            if peak[2] > nodes:
                nodes = peak[2]
    return cpu, memory, nodes


def changed_span(old: dict[int, Peaks], new: dict[int, Peaks]) -> tuple[int, int] | None:
    """The smallest bucket range ``[first, end)`` outside which ``old`` and ``new`` agree;
    None when they are equal."""
    changed = [b for b in old.keys() | new.keys() if old.get(b) != new.get(b)]
    if not changed:
        return None
    return min(changed), max(changed) + 1
