"""Placement policy: filter -> score -> select over named plugins (SPEC §4).

Pure domain code. Inputs are value objects independent of the aggregates
(``PlacementRequest``, ``WorkerCandidate``), the output is a JSON-friendly
``PlacementDecision`` that explains itself, and deciding again from the same inputs
gives an equal decision. See docs/scheduler.md.
"""

from domain.placement.candidate import WorkerCandidate
from domain.placement.decision import PLACED, UNPLACEABLE, PlacementDecision
from domain.placement.index import CandidateIndex
from domain.placement.naive import naive_decide
from domain.placement.pipeline import (
    DEFAULT_POLICY,
    DEFAULT_POLICY_VERSION,
    PlacementPipeline,
    default_filters,
    default_pipeline,
)
from domain.placement.request import PlacementRequest

__all__ = [
    "CandidateIndex",
    "DEFAULT_POLICY",
    "DEFAULT_POLICY_VERSION",
    "PLACED",
    "PlacementDecision",
    "PlacementPipeline",
    "PlacementRequest",
    "UNPLACEABLE",
    "WorkerCandidate",
    "default_filters",
    "default_pipeline",
    "naive_decide",
]
