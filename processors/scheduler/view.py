"""The scheduler's picture of the world: workers and instances folded from the event log.

The view holds real aggregates (``Worker``, ``LabletInstance``) and advances them by
applying each event of the log in global order (``event.mutate``), so after
``catch_up()`` it is exactly the state of the log up to ``position``. That is what makes
a placement replayable: a decision records ``position`` and the request, and folding the
log up to that position gives the same candidates again.

Commands are run on the cached aggregates themselves (``Worker.reserve`` then ``save``):
after a successful save the object already is the new state and the view skips the
event when it meets it in the log (its version is not newer). After any failed command
the object may hold unsaved changes, so ``reload`` replaces it from the store.

The view also tracks what the scheduler's passes need without scanning everything:
``dirty_instances``/``dirty_workers`` (touched since the last pass), the ``capacity_epoch``
(bumped by every event that can make room, so a queued instance is retried only when
something changed), and a heap of instantiation due times.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from domain.instance import InstanceState, LabletInstance
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplate
from processors.scheduler.retries import RetryFilter
from projections.events import StoredEvent
from projections.ports import EventFeed

#: worker events after which a queued instance may fit somewhere it did not before
CAPACITY_EVENTS: tuple[type, ...] = (
    Worker.WorkerRequested,
    Worker.WorkerProvisioningStarted,
    Worker.WorkerReady,
    Worker.DrainCancelled,
    Worker.WorkerRestartRequested,
    Worker.CapacityReleased,
)
#: workers that are gone: their reservations are released, their instances re-placed
GONE_WORKER_STATES = frozenset({WorkerState.FAILED, WorkerState.TERMINATED})

Loader = Callable[[str], Any]


class SchedulerView:
    def __init__(
        self, events: EventFeed, load: Loader, *, instantiation_lead: timedelta = timedelta(minutes=15),
        batch_size: int = 1000,
    ) -> None:
        self.events = events
        self.instantiation_lead = instantiation_lead
        self.load = load
        self.batch_size = batch_size
        self.position = 0
        self.workers: dict[str, Worker] = {}
        self.instances: dict[str, LabletInstance] = {}
        #: instance id -> the worker it was last requeued off (its hold there must not be resumed)
        self.requeued_from: dict[str, str] = {}
        #: instance id -> when it entered the queue, and its place in the log (FIFO order)
        self.queued_at: dict[str, tuple[datetime, int]] = {}
        #: (worker id, instance id) -> when the hold was recorded (in-flight placements are left alone)
        self.reserved_at: dict[tuple[str, str], datetime] = {}
        #: the ledgers inverted: instance id -> workers holding a reservation for it
        self._held_by: dict[str, set[str]] = {}
        self._holds: dict[str, frozenset[str]] = {}
        #: worker id -> instances holding capacity there by their own record
        self._placed: dict[str, set[str]] = {}
        self._placed_on: dict[str, str] = {}
        self.capacity_epoch = 0
        #: which failed requests a change could fit (fed with every worker change but a reservation)
        self.retries = RetryFilter()
        self.dirty_instances: set[str] = set()
        self.dirty_workers: set[str] = set()
        #: workers whose candidate facts or ledger changed since the index last saw them
        self.changed_workers: set[str] = set()
        self._due: list[tuple[datetime, str]] = []

    # -- following the log -------------------------------------------------------------
    def catch_up(self) -> int:
        """Apply everything after ``position`` up to the end of the log."""
        count = 0
        while True:
            batch = self.events.read_all(after=self.position, limit=self.batch_size)
            if not batch:
                return count
            self.apply_all(batch)
            count += len(batch)

    def apply_all(self, batch: Iterable[StoredEvent]) -> None:
        for stored in batch:
            if stored.position is not None and stored.position <= self.position:
                continue
            self.apply(stored)

    def apply(self, stored: StoredEvent) -> None:
        event = stored.event
        if isinstance(event, Worker.Event):
            worker = self._fold(self.workers, stored)
            if worker is not None:
                self._worker_changed(worker, event)
        elif isinstance(event, LabletInstance.Event):
            instance = self._fold(self.instances, stored)
            if instance is not None:
                self._instance_changed(instance, event, stored.position or 0)
        elif isinstance(event, WorkerTemplate.Event):
            self.capacity_epoch += 1  # a template edit may change what fits
            self.retries.everything_changed()
        if stored.position is not None:
            self.position = stored.position

    def _fold(self, table: dict[str, Any], stored: StoredEvent) -> Any | None:
        """Advance the cached aggregate; None when the event was already applied."""
        current = table.get(stored.stream_id)
        event = stored.event
        if current is None:
            if stored.version != 0:
                table[stored.stream_id] = self.load(stored.stream_id)  # started mid-stream
                if table is self.workers:
                    self.retries.room_changed(stored.stream_id)  # new to the view
                return table[stored.stream_id]
            table[stored.stream_id] = event.mutate(None)
            return table[stored.stream_id]
        if stored.version <= current.version:
            return None  # our own save, or a reload that already included it
        if stored.version != current.version + 1:
            table[stored.stream_id] = self.load(stored.stream_id)
            if table is self.workers:
                self.retries.room_changed(stored.stream_id)  # a gap: anything may have changed
            return table[stored.stream_id]
        event.mutate(current)
        return current

    def refresh_holds(self, worker: Worker) -> None:
        """Re-read one worker's ledger into the instance -> holders index."""
        now_held = frozenset(r.instance_id for r in worker.ledger.reservations())
        before = self._holds.get(worker.id, frozenset())
        if now_held == before:
            return
        for instance_id in before - now_held:
            holders = self._held_by.get(instance_id)
            if holders is not None:
                holders.discard(worker.id)
                if not holders:
                    del self._held_by[instance_id]
        for instance_id in now_held - before:
            self._held_by.setdefault(instance_id, set()).add(worker.id)
        self._holds[worker.id] = now_held

    def reload(self, aggregate_id: str) -> Any:
        """Replace a cached aggregate with the store's latest (after a failed command)."""
        fresh = self.load(aggregate_id)
        if isinstance(fresh, Worker):
            self.workers[aggregate_id] = fresh
            self.retries.room_changed(aggregate_id)  # the cached one may have differed in any way
            self.refresh_holds(fresh)
            self.changed_workers.add(aggregate_id)
            self.dirty_workers.add(aggregate_id)
        elif isinstance(fresh, LabletInstance):
            self.instances[aggregate_id] = fresh
            self._track_instance(fresh, 0)
        return fresh

    def saved(self, aggregate: Any) -> None:
        """A command on a cached aggregate was saved: note what changed."""
        if isinstance(aggregate, Worker):
            self.refresh_holds(aggregate)
            self.changed_workers.add(aggregate.id)
        elif isinstance(aggregate, LabletInstance):
            if aggregate.state is InstanceState.SCHEDULED:
                self.requeued_from.pop(aggregate.id, None)
            self._track_instance(aggregate, 0)

    # -- bookkeeping -----------------------------------------------------------------
    def _worker_changed(self, worker: Worker, event: Any) -> None:
        self.refresh_holds(worker)
        self.changed_workers.add(worker.id)
        self.dirty_workers.add(worker.id)
        if isinstance(event, CAPACITY_EVENTS):
            self.capacity_epoch += 1
        if not isinstance(event, Worker.CapacityReserved):  # more holds never make room
            self.retries.room_changed(worker.id)
        if isinstance(event, Worker.CapacityReserved):
            self.reserved_at[(worker.id, event.instance_id)] = event.timestamp
            self.dirty_instances.add(event.instance_id)
        elif isinstance(event, Worker.CapacityReleased):
            self.reserved_at.pop((worker.id, event.instance_id), None)
            self.dirty_instances.add(event.instance_id)
        elif isinstance(event, (Worker.WorkerTerminated, Worker.WorkerProvisioningFailed)):
            self.dirty_instances.update(event.affected_instance_ids)

    def _instance_changed(self, instance: LabletInstance, event: Any, position: int) -> None:
        if isinstance(event, LabletInstance.InstanceRequeued) and event.previous_worker_id:
            self.requeued_from[instance.id] = event.previous_worker_id
        elif isinstance(event, LabletInstance.InstanceScheduled):
            self.requeued_from.pop(instance.id, None)
        self._track_instance(instance, position)

    def _track_instance(self, instance: LabletInstance, position: int) -> None:
        self.dirty_instances.add(instance.id)
        placed_on = instance.worker_id if instance.holds_capacity else None
        previous = self._placed_on.get(instance.id)
        if previous != placed_on:
            if previous is not None:
                self._placed[previous].discard(instance.id)
                del self._placed_on[instance.id]
            if placed_on is not None:
                self._placed.setdefault(placed_on, set()).add(instance.id)
                self._placed_on[instance.id] = placed_on
        if instance.state is InstanceState.PENDING:
            if instance.id not in self.queued_at:
                start = instance.timeslot_start or instance.entered_at(InstanceState.PENDING) or instance.created_on
                self.queued_at[instance.id] = (start, position)
        else:
            self.queued_at.pop(instance.id, None)
        if instance.state is InstanceState.SCHEDULED and instance.hold_start is not None:
            heapq.heappush(self._due, (self.instantiation_due(instance), instance.id))

    # -- what passes read ----------------------------------------------------------------
    def instantiation_due(self, instance: LabletInstance) -> datetime:
        """``timeslot_start - lead``; the start of the hold for ASAP (placed "now")."""
        if instance.timeslot_start is None:
            assert instance.hold_start is not None
            return instance.hold_start
        return instance.timeslot_start - self.instantiation_lead

    def queue(self) -> list[str]:
        """PENDING instances, FIFO by start time (ASAP: when requested), then log order."""
        return [i for i, _ in sorted(self.queued_at.items(), key=lambda item: (item[1], item[0]))]

    def pop_due(self, now: datetime) -> list[str]:
        """SCHEDULED instances whose instantiation is due at ``now`` (each once)."""
        due: list[str] = []
        while self._due and self._due[0][0] <= now:
            _, instance_id = heapq.heappop(self._due)
            instance = self.instances.get(instance_id)
            if instance is not None and instance.state is InstanceState.SCHEDULED and instance_id not in due:
                due.append(instance_id)
        return due

    def push_due(self, at: datetime, instance_id: str) -> None:
        heapq.heappush(self._due, (at, instance_id))

    def next_due(self) -> datetime | None:
        while self._due:
            at, instance_id = self._due[0]
            instance = self.instances.get(instance_id)
            if instance is not None and instance.state is InstanceState.SCHEDULED:
                return at
            heapq.heappop(self._due)
        return None

    def holders(self, instance_id: str) -> list[str]:
        """Workers whose ledger holds a reservation for ``instance_id`` (by id)."""
        return sorted(self._held_by.get(instance_id, ()))

    def instances_on(self, worker_id: str) -> list[LabletInstance]:
        """Instances holding capacity on ``worker_id`` by their own record."""
        return [self.instances[i] for i in sorted(self._placed.get(worker_id, ()))]
