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


@runtime_checkable
class FilterPlugin(Protocol):
    """``filter`` returns ``None`` when the worker passes, else the reason it cannot."""

    name: str

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """``score`` is in 0-100, higher is better; ``weight`` scales it in the total."""

    name: str
    weight: float

    def score(self, request: PlacementRequest, candidate: WorkerCandidate) -> float: ...
