"""The simulator: the real processors on a virtual clock, in one process (SPEC §9).

The scheduler, the autoscaler, the worker controller and the instance controller run as
they do in ``lablet serve``, against whatever store, cloud and CML the caller passes in
(``api/simulate.py`` passes the simulated cloud and CML and an in-memory store). Instead of
background threads the harness calls their step functions itself, in a fixed order, and
then jumps the clock to the next moment anything is due:

    next = min(next booking request, next user action (login, early finish, grade),
               the cloud's next VM change, scheduler.next_wake(), the autoscaler's next plan,
               instance_controller.next_due(), worker_controller.next_wakeup())

At each instant it repeats the round (requests and user actions due → scheduler →
autoscaler → worker controller → scheduler → instance controller) until the log stops
growing. The harness also plays the users (login after the lab is ready, no-shows, early
finishes), the grader (a result ``grading_minutes`` after grading starts) and an admin
(the workload's ``admin_drains``), through the same commands the API and the CloudEvent
intake issue.

Deterministic for a given workload and seed: ids come from idempotency keys, decision ids
and seeded random sources, and nothing runs concurrently (the instance controller drives
one instance at a time).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.context import CommandContext
from domain.errors import DomainError
from domain.instance import InstanceState, LabletInstance, ScoreReport
from domain.worker import WorkerState
from domain.worker_template import WorkerTemplate, WorkerTemplateSpec
from processors.autoscaler import Autoscaler, AutoscalerSettings
from processors.commands.definitions import DefinitionService
from processors.commands.instances import Caller, InstanceRequest, InstanceService
from processors.commands.workers import WorkerService
from processors.instances import InstanceController, LifecycleSettings, MemoryCheckpoints
from processors.ports.cloud import CloudProvider
from processors.ports.cml import CmlEndpoint, CmlGateway
from processors.retry import retry_on_conflict
from processors.scheduler import Scheduler, SchedulerSettings
from processors.simulation.kpis import KpiCollector
from processors.simulation.labs import definition_fields, synthetic_lab_yaml
from processors.simulation.workload import Booking, Workload
from processors.workers import WorkerController

SERVICE = Caller("service", "simulator")
GRADER = "grader:simulator"
ADMIN = "admin:simulator"


class SettableClock(Protocol):
    def now(self) -> datetime: ...

    def set(self, moment: datetime) -> None: ...


class SimulatedCloudPort(CloudProvider, Protocol):
    def next_change_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class SimulationSettings:
    policy: str = "default"
    instantiation_lead: timedelta = timedelta(minutes=15)
    teardown_margin: timedelta = timedelta(minutes=30)
    autoscaler_interval: timedelta = timedelta(minutes=1)
    scheduler_rescan: timedelta = timedelta(minutes=5)
    grading_minutes: float = 3.0
    on_time_grace: timedelta = timedelta(minutes=1)
    #: the instance controller's CML reconciliation (a crash safety net: nothing crashes here)
    cml_reconcile_interval: timedelta = timedelta(hours=1)
    #: rounds of all processors at one instant before the clock moves on regardless
    max_rounds: int = 40
    #: the scheduler writes each instance's rewritten lab YAML (as in production); off by
    #: default: the rewrite parses YAML (~ms per lab) and changes no KPI
    prepare_lab_yaml: bool = False
    #: scaling knobs passed to the policy (``domain.scaling.ScalingSettings`` field values)
    scaling: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimulationResult:
    workload: str
    policy: str
    seed: int
    kpis: dict[str, Any]
    steps: int
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # process time: the wall time on a busy machine overstates the cost
    timeline: list[dict[str, Any]] = field(default_factory=list)  # fleet size over time, for plots
    bound_steps: list[tuple[datetime, datetime, int]] = field(default_factory=list)  # the lower bound's W(t)

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "policy": self.policy, "seed": self.seed, "steps": self.steps,
                "wall_seconds": round(self.wall_seconds, 3),
                "cpu_seconds": round(self.cpu_seconds, 3), "kpis": self.kpis}


Progress = Callable[[datetime, float], None]


def default_endpoint(worker_id: str, ip: str) -> CmlEndpoint:
    return CmlEndpoint(worker_id=worker_id, base_url=f"https://{ip}/", username="sim", password="sim")


class Simulation:
    def __init__(
        self,
        workload: Workload,
        *,
        store: Any,
        clock: SettableClock,
        cloud: SimulatedCloudPort,
        cml: CmlGateway,
        artifacts: Any,
        templates: Sequence[WorkerTemplateSpec],
        settings: SimulationSettings | None = None,
        endpoint_for: Callable[[str, str], CmlEndpoint] = default_endpoint,
    ) -> None:
        self.workload = workload
        self.store = store
        self.clock = clock
        self.cloud = cloud
        self.settings = settings or SimulationSettings()
        self.templates = list(templates)
        s = self.settings
        from domain.scaling import ScalingSettings

        self.scheduler = Scheduler(store, clock, artifacts=artifacts if s.prepare_lab_yaml else None,
                                   settings=SchedulerSettings(instantiation_lead=s.instantiation_lead,
                                                              teardown_margin=s.teardown_margin,
                                                              rescan_interval=s.scheduler_rescan))
        self.autoscaler = Autoscaler(store, clock, AutoscalerSettings(
            policy=s.policy,
            scaling=ScalingSettings(instantiation_lead=s.instantiation_lead, **s.scaling),
            teardown_margin=s.teardown_margin, interval=s.autoscaler_interval,
        ))
        self.worker_controller = WorkerController(store, cloud, clock, provider_name="simulated")
        # One instance at a time: the log's order must not depend on task interleaving.
        self.instance_controller = InstanceController(
            store, cml, artifacts, clock, endpoint_for,
            settings=LifecycleSettings(instantiation_lead=s.instantiation_lead, concurrency=1,
                                       reconcile_interval=s.cml_reconcile_interval),
            checkpoints=MemoryCheckpoints(),
        )
        self.definitions = DefinitionService(store, artifacts)
        self.instances = InstanceService(store)
        self.workers = WorkerService(store)
        self._next_drain = 0
        self.collector = KpiCollector(grace=s.on_time_grace)
        self._position = 0
        self._booking_of: dict[str, Booking] = {}
        self._actions: list[tuple[datetime, int, str, str]] = []
        self._sequence = itertools.count()
        self._next_booking = 0
        self._timeline: list[dict[str, Any]] = []
        self.steps = 0

    # -- set-up ----------------------------------------------------------------------------
    def ctx(self, actor: str, cause: str) -> CommandContext:
        return CommandContext(at=self.clock.now(), actor=actor, causation_id=cause)

    def setup(self) -> None:
        for spec in self.templates:
            self.store.save(WorkerTemplate.register(spec, self.ctx("system:seed", "simulation")))
        for profile in self.workload.definitions:
            yaml_text = synthetic_lab_yaml(profile, placeholders=self.settings.prepare_lab_yaml)
            self.definitions.publish(definition_fields(profile), self.ctx("admin:simulator", "simulation"),
                                     lab_yaml=yaml_text)

    # -- the run ---------------------------------------------------------------------------
    def run(self, progress: Progress | None = None) -> SimulationResult:
        return asyncio.run(self.run_async(progress))

    async def run_async(self, progress: Progress | None = None) -> SimulationResult:
        workload = self.workload
        start, end = workload.start, workload.end
        if self.clock.now() < start:
            self.clock.set(start)
        self.setup()
        span = (end - start) or timedelta(seconds=1)
        while True:
            now = self.clock.now()
            await self._settle(now)
            self.steps += 1
            self._sample(now)
            if progress is not None:
                progress(now, min(1.0, (now - start) / span))
            if now >= end:
                break
            self.clock.set(min(self._next_moment(now) or end, end))
        kpis = self.collector.report(end)
        return SimulationResult(workload.name, self.settings.policy, workload.seed, kpis, self.steps,
                                timeline=self._timeline, bound_steps=self.collector.bound_steps)

    async def _settle(self, now: datetime) -> None:
        """Run every processor until the log stops growing at this instant.

        The autoscaler plans once the others are quiet (a plan reads the whole demand:
        planning after each of their steps would only repeat it), then again if it acted.
        """
        for _ in range(self.settings.max_rounds):
            before = self.store.max_position()
            await self._round(now)
            self.autoscaler.tick()
            self._follow()
            if self.store.max_position() == before and not self._due(now):
                return

    async def _round(self, now: datetime) -> None:
        for _ in range(self.settings.max_rounds):
            before = self.store.max_position()
            self._requests_due(now)
            self._user_actions_due(now)
            self._admin_drains_due(now)
            self.scheduler.run_until_idle(now)
            await self.worker_controller.tick()
            self.scheduler.run_until_idle(now)
            await self.instance_controller.run_pass()
            self._follow()
            if self.store.max_position() == before and not self._due(now):
                return

    def _due(self, now: datetime) -> bool:
        bookings, drains = self.workload.bookings, self.workload.admin_drains
        return bool((self._actions and self._actions[0][0] <= now)
                    or (self._next_booking < len(bookings) and bookings[self._next_booking].at <= now)
                    or (self._next_drain < len(drains) and drains[self._next_drain].at <= now))

    def _next_moment(self, now: datetime) -> datetime | None:
        bookings, drains = self.workload.bookings, self.workload.admin_drains
        moments = [
            bookings[self._next_booking].at if self._next_booking < len(bookings) else None,
            drains[self._next_drain].at if self._next_drain < len(drains) else None,
            self._actions[0][0] if self._actions else None,
            self.cloud.next_change_at(),
            self.scheduler.next_wake(),
            self.autoscaler.next_at,
            self.instance_controller.next_due(),
            self.worker_controller.next_wakeup(),
        ]
        future = [m for m in moments if m is not None and m > now]
        return min(future, default=None)

    # -- the users and the grader ----------------------------------------------------------------
    def _requests_due(self, now: datetime) -> None:
        bookings = self.workload.bookings
        while self._next_booking < len(bookings) and bookings[self._next_booking].at <= now:
            booking = bookings[self._next_booking]
            self._next_booking += 1
            request = InstanceRequest(
                definition=booking.definition, owner_id=booking.owner, timeslot_start=booking.start,
                timeslot_end=booking.start + timedelta(minutes=booking.minutes) if booking.start else None,
                duration_minutes=None if booking.start else booking.minutes,
            )
            try:
                requested = self.instances.request(request, SERVICE, self.ctx(SERVICE.actor, f"booking:{booking.id}"),
                                                   idempotency_key=booking.id)
            except DomainError:
                continue  # refused (e.g. a slot longer than the definition allows): counted by nobody
            self._booking_of[requested.instance_id] = booking

    def _admin_drains_due(self, now: datetime) -> None:
        """The admin drains the RUNNING worker with the most labs active now (ties: lowest id)."""
        drains = self.workload.admin_drains
        while self._next_drain < len(drains) and drains[self._next_drain].at <= now:
            self._next_drain += 1
            running = [w for w in self.collector.workers.values() if w.state is WorkerState.RUNNING]
            if not running:
                continue
            busiest = min(running, key=lambda w: (-len(w.active_instance_ids(now)), w.id))
            try:
                self.workers.drain(busiest.id, self.ctx(ADMIN, "admin-drain"), reason="admin")
            except DomainError:
                continue  # it changed state meanwhile: the admin's click came too late

    def _schedule(self, at: datetime, kind: str, instance_id: str) -> None:
        heapq.heappush(self._actions, (at, next(self._sequence), kind, instance_id))

    def _user_actions_due(self, now: datetime) -> None:
        while self._actions and self._actions[0][0] <= now:
            _, _, kind, instance_id = heapq.heappop(self._actions)
            booking = self._booking_of.get(instance_id)
            try:
                if kind == "login" and booking is not None:
                    self.instances.login(instance_id, Caller("user", booking.owner),
                                         self.ctx(f"user:{booking.owner}", "simulated-user"))
                elif kind == "finish":
                    self._change(instance_id, self._finish)
                elif kind == "grade":
                    self._change(instance_id, self._grade)
            except DomainError:
                pass  # the lab moved on meanwhile (no-show stop, timeslot end, termination)

    def _change(self, instance_id: str, command: Callable[[LabletInstance], bool]) -> None:
        def attempt() -> None:
            instance = self.store.get(instance_id)
            if command(instance):
                self.store.save(instance)

        retry_on_conflict(attempt)

    def _finish(self, instance: LabletInstance) -> bool:
        if instance.state is not InstanceState.RUNNING:
            return False
        ctx = self.ctx("service:lds", "lds.session.ended")
        if instance.grading_enabled:
            instance.start_collection(ctx, trigger="lds.session.ended")
        else:
            instance.request_stop("session_ended", ctx)
        return True

    def _grade(self, instance: LabletInstance) -> bool:
        if instance.state is not InstanceState.GRADING:
            return False
        report = ScoreReport(score=80, max_score=100, cut_score=70, passed=True)
        instance.complete_grading(report, self.ctx(GRADER, "grading.session.completed"))
        return True

    # -- following the log --------------------------------------------------------------------
    def _follow(self) -> None:
        while True:
            batch = self.store.read_all(after=self._position, limit=5000)
            if not batch:
                return
            for stored in batch:
                self.collector.observe(stored)
                self._react(stored.stream_id, stored.event)
            self._position = batch[-1].position or self._position

    def _react(self, instance_id: str, event: Any) -> None:
        if not isinstance(event, LabletInstance.Event):
            return
        booking = self._booking_of.get(instance_id)
        if booking is None:
            return
        if isinstance(event, LabletInstance.InstanceReady):
            if not booking.no_show:
                begins = max(event.timestamp, booking.start or event.timestamp)
                self._schedule(begins + timedelta(minutes=booking.login_after), "login", instance_id)
        elif isinstance(event, LabletInstance.UserLoggedIn) and booking.finish_after is not None:
            finish = event.timestamp + timedelta(minutes=booking.finish_after)
            if finish < booking.end:
                self._schedule(finish, "finish", instance_id)
        elif isinstance(event, LabletInstance.GradingStarted):
            self._schedule(event.timestamp + timedelta(minutes=self.settings.grading_minutes), "grade", instance_id)

    def _sample(self, now: datetime) -> None:
        """The fleet by state at this step (for the report's plot); one point per distinct minute."""
        if self._timeline and self._timeline[-1]["at"] == now.replace(second=0, microsecond=0):
            return
        states: dict[str, int] = {}
        for worker in self.collector.workers.values():
            states[worker.state.value] = states.get(worker.state.value, 0) + 1
        self._timeline.append({"at": now.replace(second=0, microsecond=0), "workers": states,
                               "labs": self.collector.live_labs})
