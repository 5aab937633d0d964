"""Exact pruning for big fleets: decide over the few workers that could win.

With bin-packing the winner is the feasible worker with the highest score over the hold
window: ``100 * min(1, mean(peak_cpu/cpu, peak_mem/mem, peak_nodes/node_limit) + share)``
where ``share`` is the request's own mean ratio on that worker size. Each worker's
ledger is summarised per 15-minute bucket (``bucket_peaks``); a worker's score cannot
exceed its *tight bound*, the same with each field's largest bucket peak over the
window's buckets. ``ShortlistFleet.walk`` yields the acceptable workers by that bound,
best first, each once (``shortlist_fleet.py``).

When the window lies on the bucket grid (bookings do; ASAP holds do not) the bucket peaks
*are* the window's peaks: a worker whose peak plus the request exceeds its capacity (by
more than the policy's tolerance) is skipped unevaluated — the policy would reject it.

Workers are evaluated by the real policy in small chunks; the walk stops when the next
bound is below the best score found, and skips a worker that could at most tie and would
lose the tie-break (later ready, larger id). The chosen worker is therefore exactly the
one the policy would choose over the whole fleet; the record lists the workers evaluated
and counts the others as ``pruned``. When nothing fits among the first
``MAX_WITHOUT_FIT`` evaluated, the caller decides over the whole fleet instead (a
``PlacementFailed`` must explain every worker).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.placement import PlacementDecision, PlacementPipeline, PlacementRequest, WorkerCandidate
from domain.placement.decision import PLACED
from domain.placement.plugins.scores.bin_packing import BinPacking
from processors.scheduler.bucket_peaks import BUCKET, aligned, bucket_peaks
from processors.scheduler.shortlist_fleet import ShortlistFleet, ShortlistWorker, Tie, has_room

__all__ = ["BUCKET", "MAX_WITHOUT_FIT", "ShortlistFleet", "applicable", "bucket_peaks", "build_fleet",
           "shortlist_decide"]

_STEP = 0.0001 - 1e-9  # one rounding step of a score (4 decimals)
# The walk meets workers at their exact bound (on the grid): the first with room is most often
# the winner, so evaluate one, then a few at a time (each evaluation reads those ledgers).
FIRST_CHUNK = 1
CHUNK = 4
MAX_WITHOUT_FIT = 64


def applicable(pipeline: PlacementPipeline) -> bool:
    """Only for a policy whose total is the bin-packing score alone."""
    scores = getattr(pipeline, "scores", ())
    return len(scores) == 1 and isinstance(scores[0], BinPacking) and scores[0].weight > 0


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
    chunk: list[ShortlistWorker] = []
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

    on_grid = aligned(request.hold_start, request.hold_end)
    need = (request.requirements.cpu_cores, request.requirements.memory_gb, request.node_count)
    for bound, worker, peaks in fleet.walk(request):
        if best is not None and bound < best[0]:
            break  # no one left can reach the best score
        if best is None and len(candidates) + len(chunk) >= MAX_WITHOUT_FIT:
            return None
        if peaks is not None:
            if on_grid and not has_room(worker.group, peaks, need):
                continue  # the policy would reject it for capacity: not worth evaluating
            if best is not None and bound < best[0] + _STEP and worker.tie > best[1]:
                continue  # could only tie and would lose the tie-break
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
