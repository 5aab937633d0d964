"""Phase 3 of a pass: the queue (PENDING, FIFO by start time). Decide, reserve on the chosen
worker's stream (expected version), then record ``PlacementDecided`` and ``InstanceScheduled``
on the instance's stream; batched into one atomic append when no other writer interferes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.base import event_id
from domain.context import CommandContext
from domain.errors import ConcurrencyConflict, DomainError
from domain.instance import InstanceState, LabletInstance
from domain.placement import PlacementRequest
from domain.placement.slot_start_fallback import ready_by_slot_start
from processors.scheduler.candidates import worker_candidate
from processors.scheduler.records import failure_summary
from processors.scheduler.report import PassReport
from processors.scheduler.requests import reserve_request
from processors.scheduler.view import GONE_WORKER_STATES

if TYPE_CHECKING:  # a phase of the Scheduler: runs with the state SchedulerCore sets up
    from processors.scheduler.core import SchedulerCore as _Scheduler
else:
    _Scheduler = object

log = logging.getLogger(__name__)

I = InstanceState  # noqa: E741 - short alias for the state table


@dataclass
class _Batch:
    """Placements applied to cached aggregates, saved together by ``_commit``."""

    aggregates: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    reserved: list[tuple[str, str]] = field(default_factory=list)  # (worker, instance), in order
    failed: list[tuple[str, PlacementRequest | None, int]] = field(default_factory=list)  # + retry position
    retry: list[str] = field(default_factory=list)

    def add(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            self.aggregates[aggregate.id] = aggregate



class _Superseded(Exception):
    """The instance moved on while we worked on it (placed elsewhere, terminated)."""



class QueuePlacement(_Scheduler):
    """Phase 3: place the queue."""

    def _place_queue(self, now: datetime, report: PassReport) -> None:
        """Place the queue in batches: each placement is decided and applied to the cached
        aggregates, and a batch is saved in one atomic append (one commit instead of two per
        placement). A conflicting batch is reloaded and placed one by one (``_place``)."""
        view = self.view
        view.catch_up()  # decisions record the position they saw: include our own saves so far
        batch = _Batch()
        for instance_id in view.queue():
            if self._tried.get(instance_id) == view.capacity_epoch:
                continue  # failed before and nothing has made room since
            if view.holders(instance_id):
                continue  # a placement in flight (or to recover): the reconcile step owns it
            if instance_id in self._tried and not self._may_fit(instance_id, now):
                self._tried[instance_id] = view.capacity_epoch  # as if tried: it would fail again
                continue
            if self.settings.batch_size <= 1:
                self._place(instance_id, now, report)
                continue
            self._place_in_batch(instance_id, now, batch)
            if len(batch.order) >= self.settings.batch_size:
                self._commit(batch, now, report)
                batch = _Batch()
        self._commit(batch, now, report)

    def _may_fit(self, instance_id: str, now: datetime) -> bool:
        """Whether a change since its last failed try could fit this queued instance now."""
        view = self.view
        instance = view.instances[instance_id]
        if instance.state is not I.PENDING:
            return True  # not ours to skip: the placing steps look at it

        def takes(worker_id: str, request: PlacementRequest) -> bool:
            worker = view.workers.get(worker_id)
            if worker is None or worker.state in GONE_WORKER_STATES:
                return False
            candidate = [worker_candidate(worker)]
            if self.pipeline.decide(request, candidate).placed:
                return True
            relaxed = ready_by_slot_start(request)  # _decide tries it too (slot_start_fallback)
            return relaxed is not None and self.pipeline.decide(relaxed, candidate).placed

        return view.retries.may_fit(instance_id, self.request_for(instance, now), takes)

    def _place_in_batch(self, instance_id: str, now: datetime, batch: _Batch) -> None:
        view = self.view
        instance = view.instances[instance_id]
        if instance.state is not I.PENDING:
            return
        ctx = self._ctx(now, f"place:{instance_id}")
        position = view.retries.position
        request, decision, record = self._decide(instance, now, [list(p) for p in batch.reserved])
        batch.order.append(instance_id)
        if request is None or decision is None or not decision.placed:
            decision_id = str(event_id(instance.id, instance.version + 1))
            instance.record_placement_failed(decision_id, failure_summary(record), record, ctx)
            batch.add(instance)
            batch.failed.append((instance_id, request, position))
            return
        worker_id = decision.chosen_worker_id
        assert worker_id is not None
        worker = view.workers[worker_id]
        try:
            ports = reserve_request(worker, request, ctx)
        except DomainError as error:  # policy and ledger disagree: leave it for the one-by-one path
            log.warning("scheduler %s: reserving %s on %s refused: %s", self.name, instance_id, worker_id, error)
            batch.retry.append(instance_id)
            return
        view.changed_workers.add(worker_id)  # its ledger moved: the index must re-read it
        decision_id = str(event_id(instance.id, instance.version + 1))
        instance.record_placement_decided(decision_id, worker_id, record, ctx)
        instance.schedule(worker_id, ports, request.hold_start, request.hold_end, decision_id, ctx)
        batch.add(worker, instance)
        batch.reserved.append((worker_id, instance_id))

    def _commit(self, batch: _Batch, now: datetime, report: PassReport) -> None:
        view = self.view
        if batch.aggregates:
            try:
                self.store.save(*batch.aggregates.values())
            except ConcurrencyConflict:
                report.conflicts += 1
                for aggregate_id in batch.aggregates:
                    view.reload(aggregate_id)
                view.catch_up()
                for instance_id in batch.order:
                    self._place(instance_id, now, report)
                return
            except BaseException:
                for aggregate_id in batch.aggregates:
                    view.reload(aggregate_id)
                raise
            for aggregate in batch.aggregates.values():
                view.saved(aggregate)
            for worker_id, instance_id in batch.reserved:
                view.reserved_at[(worker_id, instance_id)] = now
                self._tried.pop(instance_id, None)
                view.retries.forget(instance_id)
            for instance_id, request, position in batch.failed:
                self._tried[instance_id] = view.capacity_epoch
                view.retries.failed(instance_id, request, position)
            report.placed += len(batch.reserved)
            report.failed += len(batch.failed)
            view.catch_up()
        for instance_id in batch.retry:
            self._place(instance_id, now, report)

    def _place(self, instance_id: str, now: datetime, report: PassReport) -> None:
        view = self.view
        for _ in range(self.settings.max_attempts):
            view.catch_up()
            instance = view.instances[instance_id]
            if instance.state is not I.PENDING or view.holders(instance_id):
                return
            ctx = self._ctx(now, f"place:{instance_id}")
            position = view.retries.position
            request, decision, record = self._decide(instance, now, [])
            if request is None or decision is None or not decision.placed:
                self._record_failure(instance_id, record, ctx)
                self._tried[instance_id] = view.capacity_epoch
                view.retries.failed(instance_id, request, position)
                report.failed += 1
                return
            worker_id = decision.chosen_worker_id
            assert worker_id is not None
            worker = view.workers[worker_id]
            try:
                ports = reserve_request(worker, request, ctx)
                self.store.save(worker)
            except ConcurrencyConflict:
                report.conflicts += 1
                view.reload(worker_id)
                continue
            except DomainError as error:  # the view was stale in a way the version did not catch
                log.warning("scheduler %s: reserving %s on %s refused: %s", self.name, instance_id, worker_id, error)
                report.conflicts += 1
                view.reload(worker_id)
                continue
            view.saved(worker)
            view.reserved_at[(worker_id, instance_id)] = now
            self._tried.pop(instance_id, None)
            view.retries.forget(instance_id)
            if self._schedule(instance_id, worker_id, ports, request, record, ctx):
                report.placed += 1
            else:
                report.released += self._release(worker_id, instance_id, "superseded", ctx)
            return
        log.warning("scheduler %s: %s not placed after %d conflicts; next pass", self.name, instance_id,
                    self.settings.max_attempts)

    def _schedule(
        self, instance_id: str, worker_id: str, ports: dict[str, int], request: PlacementRequest,
        record: dict[str, Any], ctx: CommandContext,
    ) -> bool:
        """Second save: the decision and the schedule, on the instance's stream. False when
        the instance went elsewhere meanwhile (the caller then releases the hold)."""

        def schedule(instance: LabletInstance) -> bool:
            if instance.state is not I.PENDING:
                if instance.holds_capacity and instance.worker_id == worker_id:
                    return True  # another scheduler completed our hold
                raise _Superseded
            decision_id = str(event_id(instance.id, instance.version + 1))
            instance.record_placement_decided(decision_id, worker_id, record, ctx)
            instance.schedule(worker_id, ports, request.hold_start, request.hold_end, decision_id, ctx)
            return True

        try:
            return self._change_instance(instance_id, schedule)
        except _Superseded:
            return False

    def _record_failure(self, instance_id: str, record: dict[str, Any], ctx: CommandContext) -> None:
        summary = failure_summary(record)

        def fail(instance: LabletInstance) -> bool:
            if instance.state is not I.PENDING:
                return False
            decision_id = str(event_id(instance.id, instance.version + 1))
            return instance.record_placement_failed(decision_id, summary, record, ctx)

        self._change_instance(instance_id, fail)
