"""Exact pruning for big fleets: decide over the few workers that could win.

With bin-packing the winner is the feasible worker with the highest score over the hold
window. A worker's score cannot exceed the score it would get at its busiest instant
*ever* (its ledger's peak over all its holds): ``100 * min(1, fullness + share)`` where
``fullness`` is the mean of its peak cpu, memory and node ratios (known without the
request, cached per worker version) and ``share`` is the request's mean ratio on that
worker's size. So workers are walked by that upper bound, best first, and evaluated by
the real policy in small chunks; the walk stops when the next bound is below the best
score found (a worker that could only tie is skipped if it loses the tie-break: later
ready, larger id). The chosen worker is therefore exactly the one the policy would
choose over the whole fleet; the record lists the workers evaluated and counts the
others as ``pruned``. When nothing fits, every worker is evaluated (the record must say
why each one failed), so the caller falls back to the plain decision.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from domain.placement import PlacementDecision, PlacementPipeline, PlacementRequest, WorkerCandidate
from domain.placement.decision import PLACED
from domain.placement.plugins.scores.bin_packing import BinPacking

#: a score is rounded to 4 decimals: it may exceed the unrounded bound by half a step
_ROUNDING = 0.00005 + 1e-9
_STEP = 0.0001 - 1e-9
FIRST_CHUNK = 4
CHUNK = 16


def applicable(pipeline: PlacementPipeline) -> bool:
    """Only for a policy whose total is the bin-packing score alone."""
    scores = getattr(pipeline, "scores", ())
    return len(scores) == 1 and isinstance(scores[0], BinPacking) and scores[0].weight > 0


def fullness(candidate: WorkerCandidate) -> float:
    """Mean of peak cpu, memory and node ratios over all the worker's holds (inf: never prune)."""
    ledger = candidate.ledger
    capacity = ledger.capacity
    limit = candidate.node_limit
    if capacity.cpu_cores <= 0 or capacity.memory_gb <= 0 or limit <= 0:
        return math.inf
    reservations = ledger.reservations()
    if not reservations:
        return 0.0
    end = ledger.last_hold_end()
    assert end is not None
    peak, nodes = ledger.peak(reservations[0].hold_start, end)
    return (peak.cpu_cores / capacity.cpu_cores + peak.memory_gb / capacity.memory_gb + nodes / limit) / 3


def tie_key(candidate: WorkerCandidate) -> tuple[float, str]:
    ready: datetime | None = candidate.expected_ready_at
    return (ready.timestamp() if ready is not None else -math.inf, candidate.worker_id)


@dataclass(frozen=True)
class Entry:
    """One worker with its request-independent bound."""

    fullness: float
    tie: tuple[float, str]
    candidate: WorkerCandidate


def group_key(candidate: WorkerCandidate) -> tuple[str, float, float, int]:
    capacity = candidate.ledger.capacity
    return (candidate.license_type, capacity.cpu_cores, capacity.memory_gb, candidate.node_limit)


def order_key(entry: Entry) -> tuple[float, tuple[float, str]]:
    """Fullest first, then the tie-break order (so the first of equals is the one that wins)."""
    return (-entry.fullness, entry.tie)


def sort_group(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=order_key)


def insert(group: list[Entry], entry: Entry) -> None:
    bisect.insort(group, entry, key=order_key)


def remove(group: list[Entry], entry: Entry) -> None:
    index = bisect.bisect_left(group, order_key(entry), key=order_key)
    while group[index] is not entry:  # equal keys cannot happen (the tie holds the worker id)
        index += 1
    del group[index]


def _share(request: PlacementRequest, key: tuple[str, float, float, int]) -> float:
    _, cpu, memory, limit = key
    wanted = request.requirements
    return (wanted.cpu_cores / cpu + wanted.memory_gb / memory + request.node_count / limit) / 3


def _walk(request: PlacementRequest, groups: dict[tuple[str, float, float, int], list[Entry]]) -> Iterator[
    tuple[float, Entry]
]:
    """Every worker of an acceptable license, by upper bound (best first), with the bound.

    Each group is already in bound order (fullest first; the request's share is the same
    for the whole group), so this merges a handful of sorted lists by their heads."""
    heads: list[list] = []  # [bound of the head, tie of the head, group entries, position, share]
    for key, entries in groups.items():
        if not entries or (request.license_affinity and key[0] not in request.license_affinity):
            continue
        share = _share(request, key) if min(key[1], key[2], key[3]) > 0 else 0.0
        heads.append([_bound(entries[0], share), entries[0].tie, entries, 0, share])
    while heads:
        best = heads[0]
        for head in heads[1:]:
            if head[0] > best[0] or (head[0] == best[0] and head[1] < best[1]):
                best = head
        entries, position, share = best[2], best[3], best[4]
        yield best[0], entries[position]
        position += 1
        if position == len(entries):
            heads.remove(best)
        else:
            best[0], best[1], best[3] = _bound(entries[position], share), entries[position].tie, position


def _bound(entry: Entry, share: float) -> float:
    if math.isinf(entry.fullness):
        return math.inf
    return 100.0 * min(1.0, entry.fullness + share) + _ROUNDING


def shortlist_decide(
    pipeline: PlacementPipeline,
    request: PlacementRequest,
    groups: dict[tuple[str, float, float, int], list[Entry]],
) -> tuple[PlacementDecision, int] | None:
    """The policy's decision over the workers that could win, and how many were pruned;
    None when nothing fits (decide over the whole fleet then)."""
    total_workers = sum(len(entries) for entries in groups.values())
    candidates: list[str] = []
    rejections: dict = {}
    scores: dict = {}
    totals: dict[str, float] = {}
    ties: dict[str, tuple[float, str]] = {}
    best: tuple[float, tuple[float, str]] | None = None  # (total, tie key) of the best so far
    chunk: list[WorkerCandidate] = []
    size = FIRST_CHUNK

    def evaluate() -> None:
        nonlocal best, size
        decision = pipeline.decide(request, chunk)
        chunk_ties = {c.worker_id: tie_key(c) for c in chunk}
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

    for bound, entry in _walk(request, groups):
        if best is not None:
            if bound < best[0]:
                break  # no one left can reach the best score
            if bound < best[0] + _STEP and entry.tie > best[1]:
                continue  # could only tie, and would lose the tie-break
        chunk.append(entry.candidate)
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
    return decision, total_workers - len(candidates)


def build_groups(candidates: Iterable[WorkerCandidate]) -> dict[tuple[str, float, float, int], list[Entry]]:
    """Fresh groups (replay, tests); the scheduler keeps its own, updated per changed worker."""
    groups: dict[tuple[str, float, float, int], list[Entry]] = {}
    for candidate in candidates:
        groups.setdefault(group_key(candidate), []).append(Entry(fullness(candidate), tie_key(candidate), candidate))
    return {key: sort_group(entries) for key, entries in groups.items()}
