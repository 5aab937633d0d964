"""How the scheduler decides one placement: the request of a queued instance, the policy over
the fleet (through the exact shortlist on a big fleet), and a cache of "nothing fits" answers."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.instance import LabletInstance
from domain.placement import CandidateIndex, PlacementDecision, PlacementRequest
from domain.placement.slot_start_fallback import ready_by_slot_start
from processors.scheduler.candidates import (
    _same_facts,
    _shape,
    decide_over_fleet,
    fleet_candidates,
    worker_candidate,
)
from processors.scheduler.records import decision_record
from processors.scheduler.requests import placement_request
from processors.scheduler.view import GONE_WORKER_STATES

if TYPE_CHECKING:  # a phase of the Scheduler: runs with the state SchedulerCore sets up
    from processors.scheduler.core import SchedulerCore as _Scheduler
else:
    _Scheduler = object


class Deciding(_Scheduler):
    """Decisions for the queue (phase 3), pure given the view."""

    def _decide(self, instance: LabletInstance, now: datetime, pending: list[list[str]]) -> tuple[
        PlacementRequest | None, PlacementDecision | None, dict[str, Any]
    ]:
        request = self.request_for(instance, now)
        if request is None:
            return None, None, {"instance_id": instance.id, "outcome": "unplaceable", "reason": "the timeslot is over"}
        self._refresh_fleet()
        started = time.perf_counter()
        decision, pruned, shortlisted = self._decide_cached(request)
        if not decision.placed and (relaxed := ready_by_slot_start(request)) is not None:
            # No worker ready by instantiation start: one still booting but ready by the
            # slot's start beats waiting for a launch made only now (slot_start_fallback).
            late = self._decide_cached(relaxed)
            if late[0].placed:
                request, (decision, pruned, shortlisted) = relaxed, late
        self.decision_seconds.append(time.perf_counter() - started)
        record = decision_record(decision, request, self.view.position, detail_limit=self.settings.detail_limit,
                                 pending=pending, pruned=pruned, shortlist=shortlisted)
        return request, decision, record

    def _decide_cached(self, request: PlacementRequest) -> tuple[PlacementDecision, int, bool]:
        """The policy's decision, pruned workers and whether the shortlist ran. An exam wave
        asks the same thing many times: while the fleet has not changed, the same request
        (but for its instance) gets the same "nothing fits" (decide is pure)."""
        shape = _shape(request)
        known = self._unplaceable.get(shape)
        if known is not None and known[0] == self._fleet_version:
            return replace(known[1], instance_id=request.instance_id), 0, known[2]
        decision, pruned, shortlisted = decide_over_fleet(
            self.pipeline, request, (lambda: self._fleet) if self._use_shortlist() else None, self._candidate_index,
        )
        if not decision.placed:
            if len(self._unplaceable) > 1024:
                self._unplaceable.clear()
            self._unplaceable[shape] = (self._fleet_version, decision, shortlisted)
        return decision, pruned, shortlisted

    def _use_shortlist(self) -> bool:
        return self._shortlist_ok and len(self._fleet) > self.settings.prune_above

    def _refresh_fleet(self) -> None:
        """Hand the workers changed since the last decision to the index and the shortlist."""
        changed = self.view.changed_workers
        if not changed:
            return
        self._index_dirty |= changed
        self._fleet_version += 1
        for worker_id in changed:
            worker = self.view.workers.get(worker_id)
            if worker is None or worker.state in GONE_WORKER_STATES:
                self._fleet.remove(worker_id)
            else:
                self._fleet.update(worker_candidate(worker))
        changed.clear()

    def request_for(self, instance: LabletInstance, now: datetime) -> PlacementRequest | None:
        """The placement request of a queued instance at ``now``; None once its hold is over."""
        lead = self.settings.instantiation_lead
        start = now if instance.timeslot_start is None else max(instance.timeslot_start - lead, now)
        end = instance.timeslot_end + self.settings.teardown_margin
        if end <= start:
            return None
        return placement_request(instance, start, end, lead)

    def _candidate_index(self) -> CandidateIndex:
        view = self.view
        self._refresh_fleet()
        changed = self._index_dirty
        if self._index is None or not hasattr(self._index, "replace"):
            if self._index is None or changed:
                self._index = CandidateIndex(fleet_candidates(view))
            changed.clear()
            return self._index
        index = self._index
        for worker_id in sorted(changed):
            worker = view.workers.get(worker_id)
            if worker is None or worker.state in GONE_WORKER_STATES:
                if index.get(worker_id) is not None:
                    index.remove(worker_id)
            else:
                current = index.get(worker_id)
                if current is not None and current.ledger is worker.ledger and _same_facts(current, worker):
                    index.ledger_changed(worker_id)  # only its ledger moved: forget its cached reads
                else:
                    index.replace(worker_candidate(worker))
        changed.clear()
        return index
