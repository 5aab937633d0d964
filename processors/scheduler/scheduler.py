"""The scheduler process manager (SPEC §4): queue → placement → reservation → schedule,
re-placement off lost workers, and the instantiation trigger.

It is level-triggered: every ``run_pass`` folds the log into its view (``SchedulerView``)
and then makes the world match it, so a pass after a crash, a conflict or a duplicate
delivery does the right thing without remembering anything else:

1. lost workers (FAILED, TERMINATED, or DRAINING past its deadline): release their
   holds, requeue their SCHEDULED instances, terminate their live ones;
2. reservations vs instances: a hold whose instance is PENDING is a placement that
   stopped between its two saves: after ``recovery_grace`` it is completed (the instance
   is scheduled with those ports); a hold whose instance is finished, or placed
   elsewhere, is released;
3. the queue (PENDING, FIFO by start time): decide with the placement policy, reserve
   on the chosen worker's stream (expected version), then record ``PlacementDecided``
   and ``InstanceScheduled`` on the instance's stream in one save; nothing fits →
   ``PlacementFailed`` (only when the reason changed). A queued instance is retried when
   the view's ``capacity_epoch`` moved (a worker came, got ready, a hold was released, a
   template changed) or at the safety re-scan; never by blind polling;
4. instantiation: SCHEDULED instances due (``timeslot_start - lead``; ASAP at once) go
   INSTANTIATING with their rewritten lab YAML stored in the artifact store.

Two schedulers may run at once (no leader): both reserve with the worker's expected
version, so the loser of a race gets ``ConcurrencyConflict``, re-reads and decides again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Protocol

from domain.base import event_id
from domain.context import CommandContext
from domain.errors import ConcurrencyConflict, DomainError, InvalidInput, NotFound
from domain.instance import InstanceState, LabletInstance
from domain.placement import (
    CandidateIndex,
    PlacementDecision,
    PlacementPipeline,
    PlacementRequest,
    WorkerCandidate,
    default_pipeline,
)
from domain.worker import Worker, WorkerState
from processors.scheduler import shortlist
from processors.scheduler.lab_yaml import InstanceLabYaml, LabYamlArtifacts
from processors.scheduler.records import decision_record, failure_summary, recovered_record
from processors.scheduler.settings import SchedulerSettings
from processors.scheduler.view import GONE_WORKER_STATES, SchedulerView
from projections.events import StoredEvent
from projections.ports import EventSubscription

log = logging.getLogger(__name__)

I = InstanceState  # noqa: E741 - short alias for the state table


class SchedulerStore(Protocol):
    """What the scheduler needs from the event store (``adapters.eventstore.EventStore``)."""

    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def read_all(self, after: int = 0, limit: int = 1000, topics: Any = ()) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...

    def subscribe(self, after: int = 0, topics: Any = ()) -> EventSubscription: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass
class PassReport:
    """What one pass did (all zero: the world already matched the log)."""

    placed: int = 0
    failed: int = 0
    recovered: int = 0
    released: int = 0
    requeued: int = 0
    terminated: int = 0
    instantiated: int = 0
    conflicts: int = 0

    @property
    def acted(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name not in ("conflicts", "failed"))

    def add(self, other: PassReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


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


@dataclass
class _Batch:
    """Placements applied to cached aggregates, saved together by ``_commit``."""

    aggregates: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    reserved: list[tuple[str, str]] = field(default_factory=list)  # (worker, instance), in order
    failed: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)

    def add(self, *aggregates: Any) -> None:
        for aggregate in aggregates:
            self.aggregates[aggregate.id] = aggregate


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


class _Superseded(Exception):
    """The instance moved on while we worked on it (placed elsewhere, terminated)."""


class Scheduler:
    def __init__(
        self,
        store: SchedulerStore,
        clock: Clock,
        *,
        artifacts: LabYamlArtifacts | None = None,
        pipeline: PlacementPipeline | None = None,
        settings: SchedulerSettings = SchedulerSettings(),
        name: str = "scheduler",
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.name = name
        self.pipeline = pipeline or default_pipeline()
        self.view = SchedulerView(store, store.get, instantiation_lead=settings.instantiation_lead)
        self.lab_yaml = InstanceLabYaml(artifacts, store.get) if artifacts is not None else None
        self._index: CandidateIndex | None = None
        self._index_dirty: set[str] = set()
        # the shortlist's view of the fleet: worker -> (group, entry), groups sorted by fullness
        self._shortlist_ok = shortlist.applicable(self.pipeline)
        self._fleet = shortlist.ShortlistFleet()
        self._fleet_version = 0  # bumped whenever a worker changed
        self._unplaceable: dict[tuple[Any, ...], tuple[int, PlacementDecision, bool]] = {}
        self._tried: dict[str, int] = {}  # queued instance -> capacity epoch of its last failed attempt
        self._recheck: dict[str, datetime] = {}  # instance -> when its in-flight hold may be completed
        self._first_pass = True
        self._last_rescan: datetime | None = None
        self._lock = threading.RLock()  # one pass at a time per scheduler object
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.decision_seconds: deque[float] = deque(maxlen=200_000)
        self.totals = PassReport()
        self.last_error: BaseException | None = None

    # -- one pass --------------------------------------------------------------------------
    def run_pass(self, now: datetime | None = None) -> PassReport:
        with self._lock:
            now = now or self.clock.now()
            report = PassReport()
            view = self.view
            view.catch_up()
            if self._first_pass or self._rescan_due(now):
                self._first_pass = False
                self._last_rescan = now
                view.capacity_epoch += 1  # time alone frees ASAP capacity: retry the queue
                view.dirty_workers.update(view.workers)
                view.dirty_instances.update(view.instances)
            self._handle_lost_workers(now, report)
            self._reconcile_holds(now, report)
            self._place_queue(now, report)
            self._instantiate_due(now, report)
            self.totals.add(report)
            return report

    def run_until_idle(self, now: datetime | None = None, *, max_passes: int = 100) -> PassReport:
        """Passes until one changes nothing (tests, simulation)."""
        total = PassReport()
        for _ in range(max_passes):
            report = self.run_pass(now)
            total.add(report)
            if not report.acted:
                return total
        raise RuntimeError(f"scheduler {self.name} still acting after {max_passes} passes")

    def next_wake(self) -> datetime | None:
        """The next instant a pass has timed work: an instantiation, a drain deadline, a
        hold to recover, the safety re-scan."""
        view = self.view
        moments = [m for m in (view.next_due(), *self._recheck.values()) if m is not None]
        moments.extend(
            w.drain_deadline for w in view.workers.values()
            if w.state is WorkerState.DRAINING and w.drain_deadline is not None
        )
        if self._last_rescan is not None:
            moments.append(self._last_rescan + self.settings.rescan_interval)
        return min(moments, default=None)

    def _rescan_due(self, now: datetime) -> bool:
        return self._last_rescan is not None and now - self._last_rescan >= self.settings.rescan_interval

    # -- 1. lost workers ----------------------------------------------------------------------
    def _handle_lost_workers(self, now: datetime, report: PassReport) -> None:
        view = self.view
        candidates = set(view.dirty_workers)
        view.dirty_workers.clear()
        candidates.update(w.id for w in view.workers.values() if w.state is WorkerState.DRAINING)
        for worker_id in sorted(candidates):
            worker = view.workers.get(worker_id)
            if worker is None:
                continue
            reason = self._lost_reason(worker, now)
            if reason is not None:
                self._evacuate(worker_id, reason, now, report)

    @staticmethod
    def _lost_reason(worker: Worker, now: datetime) -> str | None:
        if worker.state in GONE_WORKER_STATES:
            return "worker_lost"
        if worker.state is WorkerState.DRAINING and worker.drain_deadline is not None and worker.drain_deadline <= now:
            return "drain_timeout"
        return None

    def _evacuate(self, worker_id: str, reason: str, now: datetime, report: PassReport) -> None:
        """Release a lost worker's holds first (so nothing resumes them), then requeue its
        SCHEDULED instances and terminate its live ones."""
        ctx = self._ctx(now, f"evacuate:{worker_id}")
        for instance in self.view.instances_on(worker_id):
            if worker_id in self.view.workers and instance.id in self.view.workers[worker_id].ledger:
                report.released += self._release(worker_id, instance.id, reason, ctx)
            if instance.state is I.SCHEDULED:
                if self._change_instance(instance.id, lambda i: _unschedule(i, worker_id, reason, ctx)):
                    report.requeued += 1
            elif self._change_instance(instance.id, lambda i: _terminate(i, worker_id, reason, ctx)):
                report.terminated += 1
        worker = self.view.workers.get(worker_id)
        for reservation in list(worker.ledger.reservations()) if worker is not None else ():
            report.released += self._release(worker_id, reservation.instance_id, reason, ctx)

    # -- 2. holds without a scheduled instance ---------------------------------------------------
    def _reconcile_holds(self, now: datetime, report: PassReport) -> None:
        view = self.view
        ids = set(view.dirty_instances)
        view.dirty_instances.clear()
        ids.update(i for i, at in self._recheck.items() if at <= now)
        for instance_id in sorted(ids):
            self._recheck.pop(instance_id, None)
            self._reconcile(instance_id, now, report)

    def _reconcile(self, instance_id: str, now: datetime, report: PassReport) -> None:
        view = self.view
        instance = view.instances.get(instance_id)
        holders = view.holders(instance_id)
        if instance is None or not holders:
            return
        ctx = self._ctx(now, f"reconcile:{instance_id}")
        if instance.holds_capacity:
            for worker_id in holders:
                if worker_id != instance.worker_id:
                    report.released += self._release(worker_id, instance_id, "superseded", ctx)
            return
        if instance.state is not I.PENDING:  # ARCHIVED or TERMINATED: the hold is over
            for worker_id in holders:
                report.released += self._release(worker_id, instance_id, "instance_finished", ctx)
            return
        usable = [
            w for w in holders
            if self._lost_reason(view.workers[w], now) is None and view.requeued_from.get(instance_id) != w
        ]
        for worker_id in holders:
            if worker_id not in usable[:1]:
                report.released += self._release(worker_id, instance_id, "superseded", ctx)
        if not usable:
            return
        worker_id = usable[0]
        seen = view.reserved_at.setdefault((worker_id, instance_id), now)
        if now - seen < self.settings.recovery_grace:
            self._recheck[instance_id] = seen + self.settings.recovery_grace  # maybe in flight elsewhere
            return
        reservation = view.workers[worker_id].ledger.get(instance_id)
        assert reservation is not None
        record = recovered_record(instance_id, worker_id, view.position,
                                  "completing the reservation found on the worker")

        def complete(instance: LabletInstance) -> bool:
            if instance.state is not I.PENDING:
                return False
            decision_id = str(event_id(instance.id, instance.version + 1))
            instance.record_placement_decided(decision_id, worker_id, record, ctx)
            instance.schedule(worker_id, reservation.ports, reservation.hold_start, reservation.hold_end,
                              decision_id, ctx)
            return True

        try:
            if self._change_instance(instance_id, complete):
                report.recovered += 1
        except InvalidInput as error:  # the hold does not match the instance (ports): undo it
            log.warning("scheduler %s: cannot complete %s on %s: %s", self.name, instance_id, worker_id, error)
            report.released += self._release(worker_id, instance_id, "mismatch", ctx)

    # -- 3. the queue -------------------------------------------------------------------------------
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
            if self.settings.batch_size <= 1:
                self._place(instance_id, now, report)
                continue
            self._place_in_batch(instance_id, now, batch)
            if len(batch.order) >= self.settings.batch_size:
                self._commit(batch, now, report)
                batch = _Batch()
        self._commit(batch, now, report)

    def _decide(self, instance: LabletInstance, now: datetime, pending: list[list[str]]) -> tuple[
        PlacementRequest | None, PlacementDecision | None, dict[str, Any]
    ]:
        request = self.request_for(instance, now)
        if request is None:
            return None, None, {"instance_id": instance.id, "outcome": "unplaceable", "reason": "the timeslot is over"}
        self._refresh_fleet()
        started = time.perf_counter()
        # An exam wave asks the same thing many times: while the fleet has not changed, the
        # same request (but for its instance) gets the same "nothing fits" (decide is pure).
        shape = _shape(request)
        known = self._unplaceable.get(shape)
        if known is not None and known[0] == self._fleet_version:
            decision = replace(known[1], instance_id=request.instance_id)
            pruned, shortlisted = 0, known[2]
        else:
            decision, pruned, shortlisted = decide_over_fleet(
                self.pipeline, request, (lambda: self._fleet) if self._use_shortlist() else None,
                self._candidate_index,
            )
            if not decision.placed:
                if len(self._unplaceable) > 1024:
                    self._unplaceable.clear()
                self._unplaceable[shape] = (self._fleet_version, decision, shortlisted)
        self.decision_seconds.append(time.perf_counter() - started)
        record = decision_record(decision, request, self.view.position, detail_limit=self.settings.detail_limit,
                                 pending=pending, pruned=pruned, shortlist=shortlisted)
        return request, decision, record

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

    def _place_in_batch(self, instance_id: str, now: datetime, batch: _Batch) -> None:
        view = self.view
        instance = view.instances[instance_id]
        if instance.state is not I.PENDING:
            return
        ctx = self._ctx(now, f"place:{instance_id}")
        request, decision, record = self._decide(instance, now, [list(p) for p in batch.reserved])
        batch.order.append(instance_id)
        if request is None or decision is None or not decision.placed:
            decision_id = str(event_id(instance.id, instance.version + 1))
            instance.record_placement_failed(decision_id, failure_summary(record), record, ctx)
            batch.add(instance)
            batch.failed.append(instance_id)
            return
        worker_id = decision.chosen_worker_id
        assert worker_id is not None
        worker = view.workers[worker_id]
        try:
            ports = worker.reserve(
                instance_id, request.requirements, request.node_count, request.port_names,
                request.hold_start, request.hold_end, ctx, license_affinity=sorted(request.license_affinity) or None,
            )
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
            for instance_id in batch.failed:
                self._tried[instance_id] = view.capacity_epoch
            report.placed += len(batch.reserved)
            report.failed += len(batch.failed)
            view.catch_up()
        for instance_id in batch.retry:
            self._place(instance_id, now, report)

    def request_for(self, instance: LabletInstance, now: datetime) -> PlacementRequest | None:
        """The placement request of a queued instance at ``now``; None once its hold is over."""
        lead = self.settings.instantiation_lead
        start = now if instance.timeslot_start is None else max(instance.timeslot_start - lead, now)
        end = instance.timeslot_end + self.settings.teardown_margin
        if end <= start:
            return None
        req = instance.requirements
        return PlacementRequest(
            instance_id=instance.id,
            requirements=req.resources,
            node_count=req.node_count,
            license_affinity=frozenset(req.license_affinity),
            nested_virt=req.nested_virt,
            ami_name_pattern=req.ami_name_pattern,
            ami_min_version=req.ami_min_version,
            port_names=tuple(req.port_names),
            hold_start=start,
            hold_end=end,
            timeslot_start=instance.timeslot_start,
            instantiation_lead=lead,
        )

    def _place(self, instance_id: str, now: datetime, report: PassReport) -> None:
        view = self.view
        for _ in range(self.settings.max_attempts):
            view.catch_up()
            instance = view.instances[instance_id]
            if instance.state is not I.PENDING or view.holders(instance_id):
                return
            ctx = self._ctx(now, f"place:{instance_id}")
            request, decision, record = self._decide(instance, now, [])
            if request is None or decision is None or not decision.placed:
                self._record_failure(instance_id, record, ctx)
                self._tried[instance_id] = view.capacity_epoch
                report.failed += 1
                return
            worker_id = decision.chosen_worker_id
            assert worker_id is not None
            worker = view.workers[worker_id]
            try:
                ports = worker.reserve(
                    instance_id, request.requirements, request.node_count, request.port_names,
                    request.hold_start, request.hold_end, ctx,
                    license_affinity=sorted(request.license_affinity) or None,
                )
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

    # -- 4. instantiation ---------------------------------------------------------------------------
    def _instantiate_due(self, now: datetime, report: PassReport) -> None:
        for instance_id in self.view.pop_due(now):
            ctx = self._ctx(now, f"instantiate:{instance_id}")
            instance = self.view.instances[instance_id]
            try:
                uri = self.lab_yaml.prepare(instance) if self.lab_yaml is not None else None
            except (NotFound, InvalidInput) as error:  # nothing to retry: the lab cannot be built
                log.warning("scheduler %s: lab YAML for %s: %s", self.name, instance_id, error)
                if self._change_instance(instance_id, lambda i: _fail_instantiation(i, str(error), ctx)):
                    report.terminated += 1
                continue
            except Exception:  # noqa: BLE001 - artifact store outage: try again shortly
                log.exception("scheduler %s: preparing the lab YAML of %s failed; retrying", self.name, instance_id)
                self.view.push_due(now + self.settings.recovery_grace, instance_id)
                continue

            def start(instance: LabletInstance) -> bool:
                if instance.state is not I.SCHEDULED:
                    return False
                instance.start_instantiation(1, ctx, lab_yaml_uri=uri)
                return True

            if self._change_instance(instance_id, start):
                report.instantiated += 1

    # -- commands on cached aggregates -----------------------------------------------------------------
    def _change_instance(self, instance_id: str, command: Callable[[LabletInstance], bool]) -> bool:
        return self._change(self.view.instances, instance_id, command)

    def _release(self, worker_id: str, instance_id: str, reason: str, ctx: CommandContext) -> int:
        released = self._change(self.view.workers, worker_id, lambda w: w.release(instance_id, ctx, reason=reason))
        self.view.reserved_at.pop((worker_id, instance_id), None)
        if released:
            self.view.capacity_epoch += 1  # our own release: the view skips its event in the log
        return int(released)

    def _change(self, table: dict[str, Any], aggregate_id: str, command: Callable[[Any], bool]) -> bool:
        """Run ``command`` on the cached aggregate and save; on a conflict reload and retry.
        Any failure leaves the cache reloaded (the object may hold unsaved changes)."""
        for _ in range(self.settings.max_attempts):
            aggregate = table[aggregate_id]
            try:
                result = command(aggregate)
                if aggregate.pending_events:
                    self.store.save(aggregate)
            except ConcurrencyConflict:
                self.view.reload(aggregate_id)
                continue
            except BaseException:
                self.view.reload(aggregate_id)
                raise
            self.view.saved(aggregate)
            return bool(result)
        raise ConcurrencyConflict(f"{aggregate_id}: still conflicting after {self.settings.max_attempts} attempts")

    def _ctx(self, now: datetime, cause: str) -> CommandContext:
        return CommandContext(at=now, actor=self.settings.actor, causation_id=f"{self.name}:{cause}")

    # -- background loop ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=f"scheduler-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        """Pass, then sleep until an event arrives or timed work is due (capped by ``idle_wait``)."""
        failures = 0
        while not self._stopping.is_set():
            try:
                with self.store.subscribe(after=self.store.max_position()) as wakeups:
                    while not self._stopping.is_set():
                        report = self.run_pass()
                        failures = 0
                        if report.acted:
                            continue
                        wakeups.next_batch(timeout=self._sleep_seconds())
            except Exception as error:  # noqa: BLE001 - logged, retried with backoff, never fatal
                failures += 1
                self.last_error = error
                log.exception("scheduler %s: pass failed (%d in a row)", self.name, failures)
                self._stopping.wait(min(5.0, 0.05 * 2 ** min(failures, 7)))

    def _sleep_seconds(self) -> float:
        wake = self.next_wake()
        if wake is None:
            return self.settings.idle_wait
        seconds = (wake - self.clock.now()).total_seconds()
        return max(0.0, min(self.settings.idle_wait, seconds))


# -- small commands (module level so the lambdas above stay one line) -----------------------------------
def _unschedule(instance: LabletInstance, worker_id: str, reason: str, ctx: CommandContext) -> bool:
    if instance.state is not I.SCHEDULED or instance.worker_id != worker_id:
        return False
    instance.unschedule(reason, ctx)
    return True


def _terminate(instance: LabletInstance, worker_id: str, reason: str, ctx: CommandContext) -> bool:
    if not instance.holds_capacity or instance.worker_id != worker_id:
        return False
    instance.terminate(reason, ctx, detail=f"worker {worker_id}: {reason}")
    return True


def _fail_instantiation(instance: LabletInstance, detail: str, ctx: CommandContext) -> bool:
    if instance.state is not I.SCHEDULED:
        return False
    instance.terminate("instantiation_failed", ctx, detail=detail)
    return True
