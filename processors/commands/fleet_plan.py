"""Placing reservations on the fleet inside one command (extend, overrun, class booking).

The scheduler places one queued instance at a time; some commands must place several at
once and save everything together, or nothing: a class books every seat or none, an
extension moves the future labs in its way before it extends. ``FleetPlan`` loads the live
workers, decides with the same placement pipeline as the scheduler, and applies each
reservation to the loaded ``Worker`` aggregates; the caller saves them (with the
instances) in one atomic save, so optimistic concurrency on each worker stream refuses the
whole plan if any worker changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.context import CommandContext
from domain.errors import DomainError
from domain.instance import LabletInstance
from domain.placement import CandidateIndex, PlacementPipeline, default_pipeline
from domain.worker import Worker, WorkerState
from processors.aggregates import GetsAggregates, load_or_none
from processors.scheduler import decision_record, worker_candidate
from processors.scheduler.requests import placement_request, reserve_request

GONE = frozenset({WorkerState.TERMINATED, WorkerState.FAILED})


@dataclass(frozen=True)
class Placed:
    """A reservation applied to a loaded worker (not saved yet)."""

    worker: Worker
    ports: dict[str, int]
    hold_start: datetime
    hold_end: datetime
    record: dict[str, Any]


@dataclass(frozen=True)
class NotPlaced:
    reasons: list[str]
    record: dict[str, Any]


def summarise(record: dict[str, Any]) -> list[str]:
    """Short reasons from a decision record: the first reasons of the rejected workers."""
    reasons: list[str] = []
    for worker_id, rejected in (record.get("rejections") or {}).items():
        for reason in rejected[:1]:
            text = reason.get("reason") or reason.get("plugin") or "rejected"
            reasons.append(f"{worker_id}: {text}")
    return reasons or [str(record.get("reason") or "no live worker can take it")]


class FleetPlan:
    """The live workers as aggregates, and placements applied to them in memory."""

    def __init__(
        self,
        store: GetsAggregates,
        worker_ids: Iterable[str],
        *,
        lead: timedelta,
        pipeline: PlacementPipeline | None = None,
    ) -> None:
        """``store``: a ``Workspace`` when the plan is saved with other changes (the same
        worker object for every use of that worker)."""
        self.lead = lead
        self.pipeline = pipeline or default_pipeline()
        self.workers: dict[str, Worker] = {}
        for worker_id in worker_ids:
            worker = load_or_none(store, worker_id, Worker)
            if worker is not None and worker.state not in GONE:
                self.workers[worker_id] = worker
        self.touched: dict[str, Worker] = {}
        self._index = CandidateIndex([worker_candidate(w) for _, w in sorted(self.workers.items())])

    def place(
        self, instance: LabletInstance, hold_start: datetime, hold_end: datetime, ctx: CommandContext,
        *, exclude: Iterable[str] = (),
    ) -> Placed | NotPlaced:
        """Decide and reserve one hold; the worker's ledger (and the index) see it at once."""
        request = placement_request(instance, hold_start, hold_end, self.lead)
        excluded = set(exclude)
        index = self._index if not excluded else CandidateIndex(
            [worker_candidate(w) for wid, w in sorted(self.workers.items()) if wid not in excluded])
        decision = self.pipeline.decide(request, index)
        record = decision_record(decision, request, 0)
        if not decision.placed or decision.chosen_worker_id is None:
            return NotPlaced(summarise(record), record)
        worker = self.workers[decision.chosen_worker_id]
        try:
            ports = reserve_request(worker, request, ctx)
        except DomainError as error:  # the policy and the ledger disagree: report, never force
            return NotPlaced([f"{worker.id}: {error.detail}"], record)
        self._index.ledger_changed(worker.id)
        self.touched[worker.id] = worker
        return Placed(worker, ports, hold_start, hold_end, record)

    def changed(self, worker: Worker) -> None:
        """A worker's ledger was changed outside ``place`` (a release, an extension)."""
        self.touched[worker.id] = worker
        if self._index.get(worker.id) is not None:
            self._index.ledger_changed(worker.id)
