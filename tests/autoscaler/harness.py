"""A whole fleet on one virtual clock: autoscaler + worker controller + simulated cloud.

Placement is the real scheduler (``processors.scheduler``) or, with ``scheduler=None``,
``place_queued``, a first-fit stand-in with the same aggregate commands (to test the
autoscaler alone). ``run_labs`` stands in for the instance controller and the users: a
lab instantiates and runs from its hold start, and is archived at its hold end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from adapters.eventstore.store import EventStore
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InsufficientCapacity
from domain.instance import InstanceRequirements, InstanceState, LabletInstance
from domain.timeslot import Timeslot, hold_window
from domain.worker import RESERVABLE_STATES, Worker, WorkerState
from domain.worker_template import WorkerTemplate, WorkerTemplateSpec
from processors.autoscaler import Autoscaler, AutoscalerSettings, Decision
from processors.scheduler import Scheduler, SchedulerSettings
from processors.workers import WorkerController
from processors.workers.replica import AggregateReplica
from projections.projection import Projection

LEAD = timedelta(minutes=15)
MARGIN = timedelta(minutes=30)
EXAM = InstanceRequirements(cpu_cores=4, memory_gb=8, storage_gb=10, node_count=2, port_names=("serial_1",),
                            license_affinity=("PERSONAL",), max_duration_minutes=240)


@dataclass
class Fleet:
    store: EventStore
    clock: VirtualClock
    cloud: SimulatedCloud
    autoscaler: Autoscaler
    controller: WorkerController
    decisions: list[Decision] = field(default_factory=list)
    view: AggregateReplica | None = None
    scheduler: Scheduler | None = None

    def __post_init__(self) -> None:
        self.view = AggregateReplica(self.store, (Worker, LabletInstance))

    @classmethod
    def build(cls, store: EventStore, clock: VirtualClock, templates: list[WorkerTemplateSpec], *,
              cloud: SimulatedCloud | None = None, settings: AutoscalerSettings | None = None,
              real_scheduler: bool = False) -> Fleet:
        cloud = cloud or SimulatedCloud(clock, jitter=0.1, seed=7)
        for spec in templates:
            store.save(WorkerTemplate.register(spec, ctx(clock, "system:seed")))
        scheduler = Scheduler(store, clock, settings=SchedulerSettings(instantiation_lead=LEAD,
                                                                       teardown_margin=MARGIN)) if real_scheduler else None
        return cls(store, clock, cloud, Autoscaler(store, clock, settings), WorkerController(store, cloud, clock),
                   scheduler=scheduler)

    # -- demand --------------------------------------------------------------------------
    def book(self, count: int, start: datetime | None, minutes: int, *, requirements: InstanceRequirements = EXAM,
             prefix: str = "exam") -> list[str]:
        """``count`` labs of ``minutes`` from ``start`` (None: as soon as possible)."""
        begins = start or self.clock.now()
        instances = [
            LabletInstance.request_with(
                definition_name=prefix, definition_version="1.0.0", requirements=requirements,
                grading_enabled=False, owner_id=f"{prefix}-student-{n:03d}",
                timeslot=Timeslot(start, begins + timedelta(minutes=minutes)), ctx=ctx(self.clock, "service:exam"),
            )
            for n in range(count)
        ]
        self.store.save(*instances)
        return [i.id for i in instances]

    # -- stand-ins for the scheduler and the instance controller -----------------------------
    def place_queued(self) -> int:
        now = self.clock.now()
        placed = 0
        queue = [i for i in self._all(LabletInstance) if i.state is InstanceState.PENDING]
        if not queue:
            return 0
        workers = [self.store.get(w.id) for w in self._all(Worker) if w.state in RESERVABLE_STATES]
        for queued in queue:
            instance = self.store.get(queued.id)
            hold_start, hold_end = hold_window(instance.timeslot_start, instance.timeslot_end, now, LEAD, MARGIN)
            ready_by = max(instance.timeslot_start - LEAD, hold_start) if instance.timeslot_start else hold_start
            for worker in workers:
                if worker.state is not WorkerState.RUNNING and (worker.expected_ready_at or now) > ready_by:
                    continue
                try:
                    req = instance.requirements
                    ports = worker.reserve(instance.id, req.resources, req.node_count, req.port_names, hold_start,
                                           hold_end, ctx(self.clock, "system:scheduler"),
                                           license_affinity=req.license_affinity)
                except (InsufficientCapacity, Conflict):
                    continue
                instance.schedule(worker.id, ports, hold_start, hold_end, None, ctx(self.clock, "system:scheduler"))
                self.store.save(instance, worker)
                worker = self.store.get(worker.id)
                workers = [worker if w.id == worker.id else w for w in workers]
                placed += 1
                break
        return placed

    def run_labs(self) -> None:
        now = self.clock.now()
        c = ctx(self.clock, "system:instance-controller")
        for copy in self._all(LabletInstance):
            due = (copy.state is InstanceState.SCHEDULED and now >= copy.hold_start and self.scheduler is None) or (
                copy.state is InstanceState.INSTANTIATING) or (
                copy.state is InstanceState.RUNNING and now >= copy.hold_end)
            if not due:
                continue
            instance = self.store.get(copy.id)
            worker = self.store.get(instance.worker_id)
            if instance.state in (InstanceState.SCHEDULED, InstanceState.INSTANTIATING) \
                    and worker.state is WorkerState.RUNNING:
                if instance.state is InstanceState.SCHEDULED:
                    instance.start_instantiation(1, c)
                instance.mark_ready({"url": "sim"}, c)
                instance.login(c)
                self.store.save(instance)
            elif instance.state is InstanceState.RUNNING and now >= instance.hold_end:
                instance.request_stop("timeslot_end", c)
                instance.mark_stopped(c)
                instance.archive(c)
                instance.terminate(None, c)
                worker.release(instance.id, c, reason="archived")
                self.store.save(instance, worker)

    # -- time ----------------------------------------------------------------------------
    def step(self, *, place: bool = True) -> None:
        decision = self.autoscaler.tick()
        if decision is not None and decision.decision_id is not None:
            self.decisions.append(decision)
        if place and self.scheduler is not None:
            self.scheduler.run_until_idle(self.clock.now())
        elif place:
            self.place_queued()
        asyncio.run(self.controller.tick())
        if place:
            self.run_labs()

    def run_until(self, until: datetime, *, every: timedelta = timedelta(minutes=1), place: bool = True) -> None:
        while self.clock.now() < until:
            self.step(place=place)
            self.clock.advance(every)
        self.step(place=place)

    # -- reading -------------------------------------------------------------------------
    def _all(self, kind: type) -> list[Any]:
        """Read-only copies, current up to now (mutate fresh ``store.get`` aggregates only)."""
        assert self.view is not None
        self.view.catch_up()
        return list(self.view.all(kind))

    def workers(self) -> list[Worker]:
        return self._all(Worker)

    def instances(self) -> list[LabletInstance]:
        return self._all(LabletInstance)

    def project(self, *projections: Projection) -> MemoryReadModelStore:
        read_models = MemoryReadModelStore()
        read_models.ensure_tables([t for p in projections for t in p.tables])
        with read_models.transaction() as tx:
            for stored in self.store.read_all(limit=1_000_000):
                for projection in projections:
                    projection.handle(stored, tx)
        return read_models


def ctx(clock: VirtualClock, actor: str) -> CommandContext:
    return CommandContext(at=clock.now(), actor=actor)


__all__ = ["EXAM", "Fleet", "IllegalTransition", "ctx"]
