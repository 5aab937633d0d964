"""The fleet as the placement policy sees it, and one decision over it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.placement import CandidateIndex, PlacementDecision, PlacementPipeline, PlacementRequest, WorkerCandidate
from domain.worker import Worker, WorkerState
from processors.scheduler import shortlist
from processors.scheduler.view import GONE_WORKER_STATES, SchedulerView


def worker_candidate(worker: Worker) -> WorkerCandidate:
    """A worker as the placement policy sees it (the ledger is the aggregate's own, live)."""
    template = worker.template
    return WorkerCandidate(
        worker_id=worker.id,
        state=worker.state.value,
        template_name=worker.template_name,
        license_type=worker.license_type,
        max_nodes=template.max_nodes,
        nested_virt=template.nested_virt,
        ami_name=template.ami_pattern,
        ami_version=template.ami_version,
        expected_ready_at=None if worker.state is WorkerState.RUNNING else worker.expected_ready_at,
        ledger=worker.ledger,
    )


def _same_facts(candidate: WorkerCandidate, worker: Worker) -> bool:
    expected = None if worker.state is WorkerState.RUNNING else worker.expected_ready_at
    return (candidate.state == worker.state.value and candidate.expected_ready_at == expected
            and candidate.template_name == worker.template_name)


def fleet_candidates(view: SchedulerView) -> list[WorkerCandidate]:
    """Every worker that is not gone, by id: what a decision considers."""
    return [worker_candidate(w) for _, w in sorted(view.workers.items()) if w.state not in GONE_WORKER_STATES]



def _shape(request: PlacementRequest) -> tuple[Any, ...]:
    """Everything a decision depends on but the instance id."""
    data = request.to_dict()
    data.pop("instance_id")
    return tuple(sorted((k, repr(v)) for k, v in data.items()))


def decide_over_fleet(
    pipeline: PlacementPipeline,
    request: PlacementRequest,
    fleet: Callable[[], shortlist.ShortlistFleet] | None,
    index: Callable[[], CandidateIndex],
) -> tuple[PlacementDecision, int, bool]:
    """The policy's decision; over a big fleet through the exact shortlist (``fleet`` given).
    Returns the decision, how many workers were pruned, and whether the shortlist ran."""
    if fleet is not None:
        shortlisted = shortlist.shortlist_decide(pipeline, request, fleet())
        if shortlisted is not None:
            decision, pruned = shortlisted
            return decision, pruned, True
    return pipeline.decide(request, index()), 0, fleet is not None
