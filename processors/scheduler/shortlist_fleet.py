"""The fleet as the shortlist walks it: per bucket range, every worker ordered by its bound.

A worker's score over a window cannot exceed its *tight bound*
``100 * min(1, mean over fields of (the field's largest bucket peak in the window) / capacity
+ share)``, where ``share`` is the request's own mean ratio on that worker size (constant
within a (license, size) group). So, per bucket range and group, the workers are kept sorted
by ``mean ratio`` (then the policy's tie-break): walking a window best first is a merge of a
few sorted lists (one per acceptable group), each worker met once, at its tight bound.

The sorted lists are kept per bucket range (``WindowOrder``, the most recently used
``MAX_WINDOWS``): bookings come in waves on the same timeslots. ``update`` marks a changed
worker stale only in the ranges that overlap the buckets whose peaks changed (a placement
touches its own hold's buckets); a range re-sorts its stale workers when it is next walked.
An order kept this way equals one built from scratch (``tests/scheduler/test_shortlist.py``).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from domain.ledger import Reservation
from domain.placement import PlacementRequest, WorkerCandidate
from domain.resources import TOLERANCE
from processors.scheduler.bucket_peaks import Peaks, aligned, bucket_peaks, buckets, changed_span, window_peaks

#: a score is rounded to 4 decimals: it may exceed the unrounded bound by half a step
ROUNDING = 0.00005 + 1e-9
#: bucket ranges whose sorted lists are kept (least recently walked dropped)
MAX_WINDOWS = 128

Group = tuple[str, float, float, int]  # license type, cpu, memory, node limit
Tie = tuple[float, str]  # expected ready (RUNNING: -inf), worker id
Entry = tuple[float, Tie, Peaks]  # -mean ratio, tie, the window's per-field peaks
Need = tuple[float, float, int]  # what a request asks for: cpu, memory, nodes
#: request shapes whose lists of workers with room are kept per bucket range
MAX_NEEDS = 16
_EVERYWHERE = (-math.inf, math.inf)
_MARGIN = TOLERANCE + 1e-6


def tie_key(candidate: WorkerCandidate) -> Tie:
    ready: datetime | None = candidate.expected_ready_at
    return (ready.timestamp() if ready is not None else -math.inf, candidate.worker_id)


def group_key(candidate: WorkerCandidate) -> Group:
    capacity = candidate.ledger.capacity
    return (candidate.license_type, capacity.cpu_cores, capacity.memory_gb, candidate.node_limit)


@dataclass(frozen=True)
class ShortlistWorker:
    candidate: WorkerCandidate
    tie: Tie
    group: Group
    peaks: dict[int, Peaks] | None  # None: never pruned (walked first)
    reservations: list[Reservation]  # what the peaks were computed from

    def entry(self, first: int, end: int) -> Entry:
        assert self.peaks is not None
        peaks = window_peaks(self.peaks, first, end)
        _, cpu, memory, limit = self.group
        return (-((peaks[0] / cpu + peaks[1] / memory + peaks[2] / limit) / 3), self.tie, peaks)


def has_room(group: Group, peaks: Peaks, need: Need) -> bool:
    """Not surely too full: the peaks plus ``need`` stay within the capacity (with more than
    the policy's tolerance), so on a window made of whole buckets the policy may accept it."""
    _, cpu, memory, limit = group
    return peaks[0] + need[0] <= cpu + _MARGIN and peaks[1] + need[1] <= memory + _MARGIN and peaks[2] + need[2] <= limit


class WindowOrder:
    """The prunable workers of every group sorted for buckets ``[first, end)``; and, per
    request shape asked on this range, the same lists without the workers surely too full
    (on a window made of whole buckets the policy would reject them: not worth walking)."""

    def __init__(self, first: int, end: int, workers: dict[str, ShortlistWorker]) -> None:
        self.first, self.end = first, end
        self.by_group: dict[Group, list[Entry]] = {}
        self.entries: dict[str, tuple[Group, Entry]] = {}
        self.stale: set[str] = set()
        self._roomy: OrderedDict[tuple[Group, Need], list[Entry]] = OrderedDict()
        for worker_id, worker in workers.items():
            if worker.peaks is not None:
                entry = worker.entry(first, end)
                self.by_group.setdefault(worker.group, []).append(entry)
                self.entries[worker_id] = (worker.group, entry)
        for entries in self.by_group.values():
            entries.sort()

    def overlaps(self, span: tuple[float, float]) -> bool:
        return self.first < span[1] and span[0] < self.end

    def with_room(self, group: Group, need: Need) -> list[Entry]:
        """The group's sorted list without the workers that have no room for ``need``."""
        key = (group, need)
        roomy = self._roomy.get(key)
        if roomy is None:
            roomy = self._roomy[key] = [e for e in self.by_group.get(group, ()) if has_room(group, e[2], need)]
            if len(self._roomy) > MAX_NEEDS:
                self._roomy.popitem(last=False)
        else:
            self._roomy.move_to_end(key)
        return roomy

    def sync(self, workers: dict[str, ShortlistWorker]) -> None:
        """Re-sort the workers changed since the last walk."""
        for worker_id in self.stale:
            old = self.entries.pop(worker_id, None)
            if old is not None:
                _delete(self.by_group[old[0]], old[1])
                for (group, need), roomy in self._roomy.items():
                    if group == old[0] and has_room(group, old[1][2], need):
                        _delete(roomy, old[1])
            worker = workers.get(worker_id)
            if worker is not None and worker.peaks is not None:
                entry = worker.entry(self.first, self.end)
                bisect.insort(self.by_group.setdefault(worker.group, []), entry)
                self.entries[worker_id] = (worker.group, entry)
                for (group, need), roomy in self._roomy.items():
                    if group == worker.group and has_room(group, entry[2], need):
                        bisect.insort(roomy, entry)
        self.stale.clear()


class ShortlistFleet:
    """The fleet as the shortlist walks it; ``update`` a worker whenever it changes."""

    def __init__(self, *, max_windows: int = MAX_WINDOWS) -> None:
        self._workers: dict[str, ShortlistWorker] = {}
        self._never: dict[Group, list[Tie]] = {}  # workers never pruned, in tie order
        self._windows: OrderedDict[tuple[int, int], WindowOrder] = OrderedDict()
        self._max_windows = max_windows

    def __len__(self) -> int:
        return len(self._workers)

    def update(self, candidate: WorkerCandidate) -> None:
        worker_id = candidate.worker_id
        old = self._workers.get(worker_id)
        group, reservations = group_key(candidate), candidate.ledger.reservations()
        if old is not None and old.group == group and old.reservations == reservations:
            peaks = old.peaks  # the same holds (the scheduler hands a worker back after saving it)
        else:
            peaks = bucket_peaks(candidate)
        new = ShortlistWorker(candidate, tie_key(candidate), group, peaks, reservations)
        if old is not None and old.peaks is None:
            _delete(self._never[old.group], old.tie)
        if new.peaks is None:
            bisect.insort(self._never.setdefault(new.group, []), new.tie)
        self._workers[worker_id] = new
        if old is None or old.peaks is None or new.peaks is None or old.tie != new.tie or old.group != new.group:
            self._touched(worker_id, _EVERYWHERE)
        else:
            span = changed_span(old.peaks, new.peaks)
            if span is not None:
                self._touched(worker_id, span)

    def remove(self, worker_id: str) -> None:
        worker = self._workers.pop(worker_id, None)
        if worker is None:
            return
        if worker.peaks is None:
            _delete(self._never[worker.group], worker.tie)
        self._touched(worker_id, _EVERYWHERE)

    def _touched(self, worker_id: str, span: tuple[float, float]) -> None:
        first, end = span
        for order in self._windows.values():  # inline ``overlaps``: this runs per kept range per placement
            if order.first < end and first < order.end:
                order.stale.add(worker_id)

    def order(self, first: int, end: int) -> WindowOrder:
        """The sorted lists for buckets ``[first, end)``, up to date."""
        key = (first, end)
        order = self._windows.get(key)
        if order is None or len(order.stale) * 4 > len(self._workers):
            order = self._windows[key] = WindowOrder(first, end, self._workers)
            if len(self._windows) > self._max_windows:
                self._windows.popitem(last=False)
        else:
            order.sync(self._workers)
        self._windows.move_to_end(key)
        return order

    def walk(self, request: PlacementRequest) -> Iterator[tuple[float, ShortlistWorker, Peaks | None]]:
        """Acceptable workers best first: (tight bound, worker, its window peaks). Workers
        never pruned come first (bound inf, peaks None). On a window made of whole buckets
        the workers surely too full for the request are left out."""
        window = buckets(request.hold_start, request.hold_end)
        order = self.order(window.start, window.stop)
        affinity = request.license_affinity
        wanted = request.requirements
        need: Need | None = (
            (wanted.cpu_cores, wanted.memory_gb, request.node_count)
            if aligned(request.hold_start, request.hold_end) else None
        )
        heap: list[tuple[float, Tie, int, int]] = []
        lists: list[tuple[list[Entry], float]] = []
        for group in sorted(order.by_group.keys() | self._never.keys()):
            if affinity and group[0] not in affinity:
                continue
            share = _share(request, group)
            for tie in self._never.get(group, ()):
                yield math.inf, self._workers[tie[1]], None
            entries = order.by_group.get(group) if need is None else order.with_room(group, need)
            if entries:
                lists.append((entries, share))
                heap.append((-bound(-entries[0][0], share), entries[0][1], len(lists) - 1, 0))
        heapq.heapify(heap)
        workers = self._workers
        while heap:
            negative_bound, tie, k, position = heap[0]
            entries, share = lists[k]
            entry = entries[position]
            position += 1
            if position < len(entries):
                following = entries[position]
                heapq.heapreplace(heap, (-bound(-following[0], share), following[1], k, position))
            else:
                heapq.heappop(heap)
            yield -negative_bound, workers[tie[1]], entry[2]


def _delete(entries: list, item: object) -> None:
    index = bisect.bisect_left(entries, item)
    if index < len(entries) and entries[index] == item:
        del entries[index]


def _share(request: PlacementRequest, group: Group) -> float:
    _, cpu, memory, limit = group
    if min(cpu, memory, limit) <= 0:
        return 0.0
    wanted = request.requirements
    return (wanted.cpu_cores / cpu + wanted.memory_gb / memory + request.node_count / limit) / 3


def bound(ratio: float, share: float) -> float:
    return 100.0 * min(1.0, ratio + share) + ROUNDING
