"""Exact pruning for big fleets: decide over the few workers that could win.

With bin-packing the winner is the feasible worker with the highest score over the hold
window: ``100 * min(1, mean(peak_cpu/cpu, peak_mem/mem, peak_nodes/node_limit) + share)``
where ``share`` is the request's own mean ratio on that worker size. Each worker's
ledger is summarised per hour (``BUCKET``): for every hour it holds something, its peak
cpu, memory and node ratios in that hour. For a request, a worker's score cannot exceed

- the *walk bound*: ``100 * min(1, max over the window's hours of the largest ratio + share)``
  (no more than its fullest field in its fullest hour), by which workers are walked best
  first — per (license, size) group and hour the workers are kept sorted, so the walk is
  a merge of a few sorted lists where the first time a worker appears is at its bound;
- the *tight bound*: the same with the mean over fields of each field's maximum over
  the window's hours, checked before evaluating a worker.

Workers are evaluated by the real policy in small chunks; the walk stops when the next
walk bound is below the best score found, and skips a worker whose tight bound is below
it or that could at most tie and would lose the tie-break (later ready, larger id). The
chosen worker is therefore exactly the one the policy would choose over the whole fleet;
the record lists the workers evaluated and counts the others as ``pruned``. When nothing
fits among the first ``MAX_WITHOUT_FIT`` evaluated, the caller decides over the whole
fleet instead (a ``PlacementFailed`` must explain every worker).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from domain.placement import PlacementDecision, PlacementPipeline, PlacementRequest, WorkerCandidate
from domain.placement.decision import PLACED
from domain.placement.plugins.scores.bin_packing import BinPacking
from domain.resources import TOLERANCE

BUCKET = timedelta(minutes=15)  # the booking grid: aligned windows are unions of buckets
_BUCKET_SECONDS = BUCKET.total_seconds()
#: a score is rounded to 4 decimals: it may exceed the unrounded bound by half a step
_ROUNDING = 0.00005 + 1e-9
_STEP = 0.0001 - 1e-9
FIRST_CHUNK = 4
CHUNK = 16
MAX_WITHOUT_FIT = 64

Group = tuple[str, float, float, int]  # license type, cpu, memory, node limit
Tie = tuple[float, str]  # expected ready (RUNNING: -inf), worker id


def applicable(pipeline: PlacementPipeline) -> bool:
    """Only for a policy whose total is the bin-packing score alone."""
    scores = getattr(pipeline, "scores", ())
    return len(scores) == 1 and isinstance(scores[0], BinPacking) and scores[0].weight > 0


def tie_key(candidate: WorkerCandidate) -> Tie:
    ready: datetime | None = candidate.expected_ready_at
    return (ready.timestamp() if ready is not None else -math.inf, candidate.worker_id)


def group_key(candidate: WorkerCandidate) -> Group:
    capacity = candidate.ledger.capacity
    return (candidate.license_type, capacity.cpu_cores, capacity.memory_gb, candidate.node_limit)


def _bucket(moment: datetime) -> int:
    return math.floor(moment.timestamp() / _BUCKET_SECONDS)


def _buckets(start: datetime, end: datetime) -> range:
    """The hours ``[start, end)`` touches."""
    return range(_bucket(start), math.floor((end.timestamp() - 1e-6) / _BUCKET_SECONDS) + 1)


def bucket_peaks(candidate: WorkerCandidate) -> dict[int, tuple[float, float, int]] | None:
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
    peaks: dict[int, tuple[float, float, int]] = {}
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
        last = math.floor((points[i][0] - 1e-6) / _BUCKET_SECONDS)
        for bucket in range(math.floor(t / _BUCKET_SECONDS), last + 1):
            old = peaks.get(bucket)
            peaks[bucket] = (cpu, memory, nodes) if old is None else (
                max(old[0], cpu), max(old[1], memory), max(old[2], nodes))
    return peaks


@dataclass(frozen=True)
class _Worker:
    candidate: WorkerCandidate
    tie: Tie
    group: Group
    peaks: dict[int, tuple[float, float, int]] | None

    def largest_ratio(self, bucket: int) -> float:
        assert self.peaks is not None
        cpu, memory, nodes = self.peaks[bucket]
        _, capacity_cpu, capacity_memory, limit = self.group
        return max(cpu / capacity_cpu, memory / capacity_memory, nodes / limit)


class ShortlistFleet:
    """The fleet as the shortlist walks it; ``update`` a worker whenever it changes."""

    def __init__(self) -> None:
        self._workers: dict[str, _Worker] = {}
        self._zero: dict[Group, list[Tie]] = {}  # every worker of a group, in tie order (bound at 0)
        self._never: dict[Group, list[Tie]] = {}  # workers never pruned
        self._hours: dict[tuple[Group, int], list[tuple[float, Tie]]] = {}  # (-largest ratio, tie)

    def __len__(self) -> int:
        return len(self._workers)

    def update(self, candidate: WorkerCandidate) -> None:
        self.remove(candidate.worker_id)
        worker = _Worker(candidate, tie_key(candidate), group_key(candidate), bucket_peaks(candidate))
        self._workers[candidate.worker_id] = worker
        if worker.peaks is None:
            bisect.insort(self._never.setdefault(worker.group, []), worker.tie)
            return
        bisect.insort(self._zero.setdefault(worker.group, []), worker.tie)
        for bucket in worker.peaks:
            bisect.insort(self._hours.setdefault((worker.group, bucket), []), (-worker.largest_ratio(bucket), worker.tie))

    def remove(self, worker_id: str) -> None:
        worker = self._workers.pop(worker_id, None)
        if worker is None:
            return
        if worker.peaks is None:
            _delete(self._never[worker.group], worker.tie)
            return
        _delete(self._zero[worker.group], worker.tie)
        for bucket in worker.peaks:
            entries = self._hours[(worker.group, bucket)]
            _delete(entries, (-worker.largest_ratio(bucket), worker.tie))
            if not entries:
                del self._hours[(worker.group, bucket)]

    def walk(self, request: PlacementRequest) -> Iterator[tuple[float, _Worker, float]]:
        """Acceptable workers by walk bound, best first: (walk bound, worker, share)."""
        hours = _buckets(request.hold_start, request.hold_end)
        heap: list[tuple[float, Tie, int, int]] = []
        streams: list[tuple[list, float, bool]] = []  # (sorted entries, share, entries are (-ratio, tie))

        def push(stream: int, position: int) -> None:
            entries, share, rated = streams[stream]
            if position < len(entries):
                item = entries[position]
                ratio, tie = (-item[0], item[1]) if rated else (0.0, item)
                heapq.heappush(heap, (-_bound(ratio, share), tie, stream, position))

        for group in sorted(set(self._zero) | set(self._never)):
            if request.license_affinity and group[0] not in request.license_affinity:
                continue
            share = _share(request, group)
            for tie in self._never.get(group, ()):
                yield math.inf, self._workers[tie[1]], share
            for hour in hours:
                entries = self._hours.get((group, hour))
                if entries:
                    streams.append((entries, share, True))
                    push(len(streams) - 1, 0)
            if self._zero.get(group):
                streams.append((self._zero[group], share, False))
                push(len(streams) - 1, 0)
        seen: set[str] = set()
        while heap:
            negative_bound, tie, stream, position = heapq.heappop(heap)
            push(stream, position + 1)
            if tie[1] in seen:
                continue
            seen.add(tie[1])
            yield -negative_bound, self._workers[tie[1]], streams[stream][1]


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


def _bound(ratio: float, share: float) -> float:
    return 100.0 * min(1.0, ratio + share) + _ROUNDING


def _window_peaks(worker: _Worker, buckets: range) -> tuple[float, float, int]:
    """Per field, the largest bucket peak over the buckets the window touches (an upper
    bound of the window's peak; equal to it when the window is a union of buckets)."""
    assert worker.peaks is not None
    get = worker.peaks.get
    cpu = memory = 0.0
    nodes = 0
    for bucket in buckets:
        peaks = get(bucket)
        if peaks is not None:
            if peaks[0] > cpu:
                cpu = peaks[0]
            if peaks[1] > memory:
                memory = peaks[1]
            if peaks[2] > nodes:
                nodes = peaks[2]
    return cpu, memory, nodes


def _aligned(request: PlacementRequest) -> bool:
    return request.hold_start.timestamp() % _BUCKET_SECONDS == 0 and request.hold_end.timestamp() % _BUCKET_SECONDS == 0


def _surely_too_full(worker: _Worker, request: PlacementRequest, peaks: tuple[float, float, int]) -> bool:
    """The window's exact peak plus the request exceeds the capacity (aligned windows only),
    by more than the policy's own tolerance: the policy would reject this worker too."""
    _, cpu, memory, limit = worker.group
    wanted = request.requirements
    margin = TOLERANCE + 1e-6
    return (peaks[0] + wanted.cpu_cores > cpu + margin or peaks[1] + wanted.memory_gb > memory + margin
            or peaks[2] + request.node_count > limit)


def _tight_bound(worker: _Worker, peaks: tuple[float, float, int], share: float) -> float:
    _, cpu, memory, limit = worker.group
    return _bound((peaks[0] / cpu + peaks[1] / memory + peaks[2] / limit) / 3, share)


def shortlist_decide(
    pipeline: PlacementPipeline,
    request: PlacementRequest,
    fleet: ShortlistFleet,
) -> tuple[PlacementDecision, int] | None:
    """The policy's decision over the workers that could win, and how many were pruned;
    None when nothing fitted among the first ``MAX_WITHOUT_FIT`` (decide over all then)."""
    candidates: list[str] = []
    rejections: dict = {}
    scores: dict = {}
    totals: dict[str, float] = {}
    ties: dict[str, Tie] = {}
    best: tuple[float, Tie] | None = None  # (total, tie key) of the best so far
    chunk: list[_Worker] = []
    size = FIRST_CHUNK

    def evaluate() -> None:
        nonlocal best, size
        decision = pipeline.decide(request, [w.candidate for w in chunk])
        chunk_ties = {w.candidate.worker_id: w.tie for w in chunk}
        candidates.extend(decision.candidates)
        rejections.update(decision.rejections)
        scores.update(decision.scores)
        for worker_id in decision.ranking:
            total = totals[worker_id] = decision.total_scores[worker_id]
            tie = ties[worker_id] = chunk_ties[worker_id]
            if best is None or total > best[0] or (total == best[0] and tie < best[1]):
                best = (total, tie)
        chunk.clear()
        size = CHUNK

    aligned = _aligned(request)
    window = _buckets(request.hold_start, request.hold_end)
    for bound, worker, share in fleet.walk(request):
        if best is not None and bound < best[0]:
            break  # no one left can reach the best score
        if best is None and len(candidates) + len(chunk) >= MAX_WITHOUT_FIT:
            return None
        if worker.peaks is not None:
            peaks = _window_peaks(worker, window)
            if aligned and _surely_too_full(worker, request, peaks):
                continue  # the policy would reject it for capacity: not worth evaluating
            if best is not None:
                tight = _tight_bound(worker, peaks, share)
                if tight < best[0] or (tight < best[0] + _STEP and worker.tie > best[1]):
                    continue  # cannot beat the best, or could only tie and would lose the tie-break
        chunk.append(worker)
        if len(chunk) >= size:
            evaluate()
    if chunk:
        evaluate()
    if best is None:
        return None
    ranking = sorted(totals, key=lambda w: (-totals[w], ties[w]))
    decision = PlacementDecision(
        instance_id=request.instance_id,
        chosen_worker_id=ranking[0],
        candidates=candidates,
        rejections=rejections,
        scores=scores,
        total_scores=totals,
        policy=pipeline.policy_name,
        policy_version=pipeline.policy_version,
        outcome=PLACED,
        ranking=ranking,
        needed=None,
    )
    return decision, len(fleet) - len(candidates)


def build_fleet(candidates: Iterable[WorkerCandidate]) -> ShortlistFleet:
    """A fresh fleet (replay, tests); the scheduler keeps its own, updated per changed worker."""
    fleet = ShortlistFleet()
    for candidate in candidates:
        fleet.update(candidate)
    return fleet
