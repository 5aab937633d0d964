"""Placement as filter -> score -> select over named plugins (SPEC §4).

``PlacementPipeline.decide`` is a pure function of its inputs: the same request and
candidates (with ledgers in the same state) always give an equal decision, so a
recorded decision can be replayed and audited, and a policy can be re-run in what-if.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from domain.placement.candidate import WorkerCandidate
from domain.placement.decision import PLACED, UNPLACEABLE, PlacementDecision, Rejection, rejection_counts
from domain.placement.index import CandidateIndex
from domain.placement.plugins import FilterPlugin, ScorePlugin, split_one_by_one
from domain.placement.plugins.filters import (
    LicenseAffinity,
    NestedVirtAndAmi,
    NodeLimit,
    PortsOverWindow,
    ResourcesOverWindow,
    WorkerState,
)
from domain.placement.plugins.scores import BinPacking
from domain.placement.request import PlacementRequest
from domain.placement.window import reading

DEFAULT_POLICY = "bin-packing"
DEFAULT_POLICY_VERSION = "1"


class PlacementPipeline:
    """Runs ``filters`` in order on each candidate, scores the survivors with ``scores``
    and picks the best: highest total score, then earliest expected ready, then the
    smallest worker id.

    Filters short-circuit per candidate: the first failing filter's reason is recorded
    (all failing filters with ``record_all_rejections=True``), so order them cheap to
    expensive. ``policy_name``/``policy_version`` are recorded in every decision.
    """

    def __init__(
        self,
        filters: Sequence[FilterPlugin],
        scores: Sequence[ScorePlugin],
        policy_name: str = DEFAULT_POLICY,
        policy_version: str = DEFAULT_POLICY_VERSION,
        *,
        record_all_rejections: bool = False,
    ) -> None:
        names = [plugin.name for plugin in (*filters, *scores)]
        if len(set(names)) != len(names):
            raise ValueError(f"plugin names must be unique, got {names}")
        if scores and sum(score.weight for score in scores) <= 0:
            raise ValueError("score weights must add up to more than zero")
        self.filters = tuple(filters)
        self.scores = tuple(scores)
        self.policy_name = policy_name
        self.policy_version = policy_version
        self.record_all_rejections = record_all_rejections
        # An index lets a license mismatch reject a whole group at once; that is only
        # equivalent to running the filters one by one when the license filter runs first.
        self._license_first = bool(self.filters) and isinstance(self.filters[0], LicenseAffinity)

    def decide(
        self,
        request: PlacementRequest,
        candidates: Iterable[WorkerCandidate] | CandidateIndex,
    ) -> PlacementDecision:
        rejections: dict[str, list[Rejection]] = {}
        reads = None
        if isinstance(candidates, CandidateIndex):
            reads = candidates.reads_for(request.hold_start, request.hold_end)
            worker_ids = list(candidates.worker_ids)
            if self._license_first and not self.record_all_rejections:
                to_filter = self._reject_other_licenses(request, candidates, rejections)
            else:
                to_filter = list(candidates.candidates)
        else:
            to_filter = candidates if isinstance(candidates, (list, tuple)) else list(candidates)
            worker_ids = [candidate.worker_id for candidate in to_filter]
            if len(set(worker_ids)) != len(worker_ids):
                raise ValueError("candidates must have distinct worker ids")

        with reading(reads):
            feasible = self._filter(request, to_filter, rejections)
            scores, total_scores = self._score(request, feasible)
        ranking = _rank(feasible, total_scores)
        chosen = ranking[0] if ranking else None
        return PlacementDecision(
            instance_id=request.instance_id,
            chosen_worker_id=chosen,
            candidates=worker_ids,
            rejections=rejections,
            scores=scores,
            total_scores=total_scores,
            policy=self.policy_name,
            policy_version=self.policy_version,
            outcome=PLACED if chosen is not None else UNPLACEABLE,
            ranking=ranking,
            needed=None if chosen is not None else needed_for(request, rejections),
        )

    def _reject_other_licenses(
        self,
        request: PlacementRequest,
        index: CandidateIndex,
        rejections: dict[str, list[Rejection]],
    ) -> list[WorkerCandidate]:
        if not request.license_affinity:
            return list(index.candidates)
        license_filter = self.filters[0]
        for license_type, group in index.by_license.items():
            if license_type in request.license_affinity:
                continue
            # One shared record per group: equal to what the filter would say for each.
            reason = license_filter.filter(request, group[0])
            assert reason is not None
            shared = [{"plugin": license_filter.name, "reason": reason}]
            rejections.update(dict.fromkeys(index.ids_by_license[license_type], shared))
        return index.with_licenses(request.license_affinity)

    def _filter(
        self,
        request: PlacementRequest,
        candidates: Iterable[WorkerCandidate],
        rejections: dict[str, list[Rejection]],
    ) -> list[WorkerCandidate]:
        filters = self.filters
        if self.record_all_rejections:
            feasible: list[WorkerCandidate] = []
            for candidate in candidates:
                failed = [
                    {"plugin": plugin.name, "reason": reason}
                    for plugin in filters
                    if (reason := plugin.filter(request, candidate)) is not None
                ]
                if failed:
                    rejections[candidate.worker_id] = failed
                else:
                    feasible.append(candidate)
            return feasible
        # Filter by filter over the shrinking pool: the same first-failing-filter verdicts
        # as checking each candidate in turn, with one call per filter instead of per worker.
        pool = candidates if isinstance(candidates, list) else list(candidates)
        for plugin in filters:
            if not pool:
                break
            split = getattr(plugin, "filter_many", None)
            pool, rejected = split(request, pool) if split else split_one_by_one(plugin, request, pool)
            name = plugin.name
            for worker_id, reason in rejected:
                rejections[worker_id] = [{"plugin": name, "reason": reason}]
        return pool

    def _score(
        self, request: PlacementRequest, feasible: list[WorkerCandidate]
    ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        scores: dict[str, dict[str, float]] = {}
        total_scores: dict[str, float] = {}
        plugins = self.scores
        if len(plugins) == 1:
            # The usual policy has one score: its value is the total (no weighting to do).
            (plugin,) = plugins
            name = plugin.name
            for candidate, value in zip(feasible, _score_all(plugin, request, feasible), strict=True):
                value = float(value)
                scores[candidate.worker_id] = {name: value}
                total_scores[candidate.worker_id] = value  # one score: it is the total
            return scores, total_scores
        total_weight = sum(plugin.weight for plugin in plugins)
        columns = [_score_all(plugin, request, feasible) for plugin in plugins]
        for n, candidate in enumerate(feasible):
            by_plugin = {plugin.name: float(column[n]) for plugin, column in zip(plugins, columns, strict=True)}
            scores[candidate.worker_id] = by_plugin
            total_scores[candidate.worker_id] = (
                round(sum(plugin.weight * by_plugin[plugin.name] for plugin in plugins) / total_weight, 4)
                if total_weight
                else 0.0
            )
        return scores, total_scores


def _score_all(plugin: ScorePlugin, request: PlacementRequest, candidates: list[WorkerCandidate]) -> list[float]:
    score_many = getattr(plugin, "score_many", None)
    if score_many is not None:
        return list(score_many(request, candidates))
    return [plugin.score(request, candidate) for candidate in candidates]


def _rank(feasible: list[WorkerCandidate], total_scores: dict[str, float]) -> list[str]:
    """Feasible worker ids, best first: highest total, earliest ready, smallest id."""
    never = float("-inf")  # no expected ready time on a feasible worker: RUNNING, ready now
    keys = [
        (
            -total_scores[c.worker_id],
            c.expected_ready_at.timestamp() if c.expected_ready_at is not None else never,
            c.worker_id,
        )
        for c in feasible
    ]
    keys.sort()
    return [key[2] for key in keys]


def needed_for(request: PlacementRequest, rejections: dict[str, list[Rejection]]) -> dict[str, Any]:
    """What an unplaceable request would need: the autoscaler's demand signal and the
    "why is it still pending" summary."""
    return {
        "resources": request.requirements.to_dict(),
        "node_count": request.node_count,
        "port_count": len(request.port_names),
        "license_affinity": sorted(request.license_affinity),
        "nested_virt": request.nested_virt,
        "ami_name_pattern": request.ami_name_pattern,
        "ami_min_version": request.ami_min_version,
        "hold_start": request.hold_start.isoformat(),
        "hold_end": request.hold_end.isoformat(),
        "ready_by": request.ready_by.isoformat(),
        "workers_considered": len(rejections),
        "rejections_by_plugin": rejection_counts(rejections),
    }


def default_filters() -> list[FilterPlugin]:
    """SPEC §4's filters, cheap to expensive: candidate facts first, ledger reads last."""
    return [
        LicenseAffinity(),
        WorkerState(),
        NestedVirtAndAmi(),
        NodeLimit(),
        ResourcesOverWindow(),
        PortsOverWindow(),
    ]


def default_pipeline(*, record_all_rejections: bool = False) -> PlacementPipeline:
    """The policy the scheduler runs: SPEC §4's filters and bin-packing."""
    return PlacementPipeline(
        default_filters(),
        [BinPacking()],
        DEFAULT_POLICY,
        DEFAULT_POLICY_VERSION,
        record_all_rejections=record_all_rejections,
    )
