"""Decide a recorded placement again from its inputs: the audit of "why did it land there".

A record's ``inputs`` are the request and the log position the scheduler had folded
(plus the holds of its own batch applied but not yet saved). Folding the log up to that
position and applying those holds gives the fleet the scheduler saw; the policy, a pure
function, then gives the same decision - or, with another policy, the what-if.
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.placement import CandidateIndex, PlacementPipeline, PlacementRequest, default_pipeline
from domain.worker import Worker
from processors.scheduler.records import DEFAULT_DETAIL_LIMIT, decision_record
from processors.scheduler.scheduler import decide_over_fleet, fleet_candidates
from processors.scheduler.shortlist import build_fleet
from processors.scheduler.view import SchedulerView
from projections.events import StoredEvent


class ReplayStore(Protocol):
    def read_all(self, after: int = 0, limit: int = 1000, topics: Any = ()) -> list[StoredEvent]: ...

    def read_stream(self, stream_id: str, after_version: int | None = None) -> list[StoredEvent]: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def max_position(self) -> int: ...

    def subscribe(self, after: int = 0, topics: Any = ()) -> Any: ...


def fleet_at(store: ReplayStore, position: int, pending: list[list[str]] = ()) -> SchedulerView:  # type: ignore[assignment]
    """The scheduler's view as of ``position``, plus the batch's unsaved holds."""
    view = SchedulerView(store, store.get)
    while view.position < position:
        batch = [e for e in store.read_all(after=view.position, limit=1000) if (e.position or 0) <= position]
        if not batch:
            break
        view.apply_all(batch)
    for worker_id, instance_id in pending:
        worker: Worker = view.workers[worker_id]
        stored = store.read_stream(worker_id, after_version=worker.version)[0]
        event = stored.event
        if not isinstance(event, Worker.CapacityReserved) or event.instance_id != instance_id:
            raise ValueError(f"expected the hold of {instance_id} at {worker_id}@{stored.version}, got {event!r}")
        event.mutate(worker)
    return view


def replay_record(
    store: ReplayStore,
    record: dict[str, Any],
    pipeline: PlacementPipeline | None = None,
    *,
    detail_limit: int = DEFAULT_DETAIL_LIMIT,
) -> dict[str, Any]:
    """The record the policy gives for ``record``'s inputs (equal to it for the same policy)."""
    inputs = record["inputs"]
    pending = [list(p) for p in inputs.get("pending", [])]
    view = fleet_at(store, inputs["fleet_position"], pending)
    request = PlacementRequest.from_dict(inputs["request"])
    candidates = fleet_candidates(view)
    fleet = (lambda: build_fleet(candidates)) if inputs.get("shortlist") else None
    decision, pruned, shortlisted = decide_over_fleet(
        pipeline or default_pipeline(), request, fleet, lambda: CandidateIndex(candidates)
    )
    return decision_record(decision, request, inputs["fleet_position"], detail_limit=detail_limit, pending=pending,
                           pruned=pruned, shortlist=shortlisted)
