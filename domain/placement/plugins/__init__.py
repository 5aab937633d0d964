"""The two kinds of placement plugin, after the Kubernetes scheduler framework.

A *filter* says whether one worker can take one request at all, and if not, why; a
*score* ranks the workers that passed every filter. Plugins are small, stateless and
pure: the same request and candidate always give the same answer, which is what makes
a recorded decision replayable.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest


#: the outcome of a filter over many candidates: those that pass, and (worker id,
#: reason) for each one rejected
Split = tuple[list[WorkerCandidate], list[tuple[str, str]]]


@runtime_checkable
class FilterPlugin(Protocol):
    """``filter`` returns ``None`` when the worker passes, else the reason it cannot.

    A plugin may also offer ``filter_many(request, candidates) -> Split``, the same
    verdicts for a whole list in one call (the pipeline prefers it: one Python call per
    filter instead of one per worker). It must agree with ``filter`` exactly.
    """

    name: str

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None: ...


def split_one_by_one(plugin: FilterPlugin, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
    """``filter_many`` for a plugin that has only ``filter``."""
    passed: list[WorkerCandidate] = []
    rejected: list[tuple[str, str]] = []
    check = plugin.filter
    for candidate in candidates:
        reason = check(request, candidate)
        if reason is None:
            passed.append(candidate)
        else:
            rejected.append((candidate.worker_id, reason))
    return passed, rejected


@runtime_checkable
class ScorePlugin(Protocol):
    """``score`` is in 0-100, higher is better; ``weight`` scales it in the total.

    A plugin may also offer ``score_many(request, candidates) -> list[float]``, equal
    to ``score`` on each candidate, which the pipeline prefers.
    """

    name: str
    weight: float

    def score(self, request: PlacementRequest, candidate: WorkerCandidate) -> float: ...
