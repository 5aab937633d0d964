"""The instance controller: drives each lablet instance through its life on CML (SPEC §6).

Level-triggered, like a Kubernetes controller: for every live instance it loads the
aggregate, compares it with the clock and with CML, and does the one thing that is due —
then looks again. It never trusts its memory for what to do, only for *when* to look:

- which instances exist comes from a re-scan of the log at start, then from following it;
- what to do comes from the instance's state (read from the store before every step) and
  from CML (labs are found by title, the title carries the instance id, so an import is
  never repeated and a half-done attempt is picked up where it stopped).

So a crash at any point loses nothing: the next controller re-scans, finds every live
instance in the state its last save left it, and finds its lab (or none) on CML.

The one obligation that is *not* visible in an instance's state is cleaning up after a
termination somebody else recorded (an admin's ``DELETE`` while the lab runs): the
controller follows the log with a checkpoint that never passes an ``InstanceTerminated``
whose lab it has not deleted yet. And a reconciliation pass compares each worker's labs
with the instances placed on it and deletes the labs of finished instances.

Steps per state (each saved before the next one starts):

| state | step |
|---|---|
| INSTANTIATING | find or import the lab (title = instance id), start it, record ``LabImported``/``LabStarted``, wait until booted, ``mark_ready`` with the user session; on failure delete the lab and ``instantiation_failed`` (retried after a backoff, at most 3 times) |
| READY, RUNNING | at ``timeslot_end``: collection (or stop without grading); a RUNNING lab restarted from STOPPED is started on CML again |
| COLLECTING | node configs → an artifact → ``start_grading`` (the dispatcher sends the grading CloudEvent) |
| STOPPING | score report → an artifact; lab stopped on CML → ``mark_stopped`` |
| STOPPED | when due (``policy.archive_due``): lab deleted → ``archive`` + ``Worker.release`` |
| ARCHIVED | ``terminate`` (completed) |
| TERMINATED | the lab deleted from CML, a capacity hold still on the worker released |

Plus the watchdog (``policy.watchdog_deadline``) before every step.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.context import CommandContext
from domain.definition import DefinitionVersion, LabletDefinition
from domain.errors import ConcurrencyConflict, InvalidInput, NotFound
from domain.instance import InstanceState, LabletInstance
from domain.lab_yaml import rewrite_ports
from domain.worker import Worker, WorkerState
from processors.aggregates import load_or_none
from processors.follower import CheckpointStore
from processors.instances import naming
from processors.instances.policy import Outcome, Step, archive_due, next_look, scheduled_step, watchdog_deadline
from processors.instances.session import user_session
from processors.instances.settings import LifecycleSettings
from processors.ports.artifacts import ArtifactError
from processors.ports.clock import Clock
from processors.ports.cml import CmlEndpoint, CmlError, CmlGateway, CmlLabNotFound, LabStatus
from projections.events import StoredEvent

log = logging.getLogger(__name__)

S = InstanceState
# Workers whose CML can be reached (labs exist there and can be driven).
REACHABLE = frozenset({WorkerState.RUNNING, WorkerState.DRAINING})
GONE = frozenset({WorkerState.FAILED, WorkerState.TERMINATED})
# Events that say where an instance lives and whether it is finished (the start-up re-scan).
SCAN_EVENTS = (
    LabletInstance.InstanceRequested,
    LabletInstance.InstanceScheduled,
    LabletInstance.InstanceRequeued,
    LabletInstance.InstanceArchived,
    LabletInstance.InstanceTerminated,
)
# Worker events that change only its reservations, not where or whether its CML runs.
LEDGER_EVENTS = (Worker.CapacityReserved, Worker.CapacityReleased, Worker.ReservationExtended)
MAX_STEPS_PER_LOOK = 24  # a look ends when nothing more is due; this only bounds conflict storms


def _topic(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class ControllerStore(Protocol):
    """The event store calls used here (``adapters.eventstore.EventStore`` has them)."""

    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def read_stream(self, stream_id: str, after_version: int | None = None) -> list[StoredEvent]: ...

    def read_all(self, after: int = 0, limit: int = 1000, topics: Sequence[str] = ()) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...


class Artifacts(Protocol):
    """Synchronous artifact calls (``adapters.artifacts.blocking.BlockingArtifactStore``);
    the controller runs them in a thread so a slow S3 never blocks the loop."""

    def get(self, uri_or_key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...


EndpointFor = Callable[[str, str], CmlEndpoint]  # (worker id, worker ip) -> its CML controller


class MemoryCheckpoints:
    """A checkpoint store in memory (tests, simulation): shared by successive controllers
    to stand for the durable one."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    def load_checkpoint(self, name: str) -> int:
        return self.positions.get(name, 0)

    def save_checkpoint(self, name: str, position: int) -> None:
        self.positions[name] = position


@dataclass(frozen=True)
class WorkerInfo:
    """What the controller needs to reach a worker's CML (loading a worker replays its ledger)."""

    worker_id: str
    state: WorkerState
    ip: str | None


@dataclass
class ReconcileReport:
    workers: int = 0
    deleted: list[tuple[str, str, str]] = field(default_factory=list)  # (worker, lab id, instance id)
    unexplained: dict[str, list[str]] = field(default_factory=dict)  # worker -> lab ids named by no instance


class InstanceController:
    def __init__(
        self,
        store: ControllerStore,
        cml: CmlGateway,
        artifacts: Artifacts,
        clock: Clock,
        endpoint_for: EndpointFor,
        *,
        settings: LifecycleSettings | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.store = store
        self.cml = cml
        self.artifacts = artifacts
        self.clock = clock
        self.endpoint_for = endpoint_for
        self.settings = settings or LifecycleSettings()
        self.checkpoints: CheckpointStore = checkpoints or MemoryCheckpoints()
        self.position = 0  # read up to here
        self._saved_checkpoint: int | None = None
        self._live: dict[str, datetime | None] = {}  # instance id -> when to look next (None: now)
        self._dirty: set[str] = set()  # changed in the log since the last look
        self._cleanup: dict[str, int] = {}  # terminated instance id -> its InstanceTerminated position
        self._placed: dict[str, str] = {}  # instance id -> the worker it was last placed on
        self._finished: set[str] = set()
        self._cleaned: set[str] = set()  # terminated and cleaned up before the log brought the termination
        self._restart_checked: dict[str, datetime] = {}  # RUNNING instance -> restart whose lab was checked
        self._retry_at: dict[str, datetime] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._versions: dict[tuple[str, str], DefinitionVersion | None] = {}
        self._workers: dict[str, WorkerInfo | None] = {}  # cached; dropped when the log changes them
        self._last_reconcile: datetime | None = None
        self._started = False
        self._semaphore: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    # == following the log ===========================================================
    def rescan(self) -> int:
        """Find every instance and where it lives (start-up): live ones get a look at once.
        Returns how many live instances were found."""
        topics = [_topic(cls) for cls in SCAN_EVENTS]
        after, head = 0, self.store.max_position()
        while after < head:
            batch = self.store.read_all(after=after, limit=1000, topics=topics)
            if not batch:
                break
            for stored in batch:
                self._note(stored, cleanup=False)
            after = batch[-1].position or head
        self.position = self._saved_checkpoint = self.checkpoints.load_checkpoint(self.settings.checkpoint_name)
        self._dirty.update(self._live)
        return len(self._live)

    def poll_log(self, limit: int = 1000) -> int:
        """Read what was appended since the last poll; returns how many events were read."""
        count = 0
        while True:
            batch = self.store.read_all(after=self.position, limit=limit)
            if not batch:
                break
            for stored in batch:
                if isinstance(stored.event, LabletInstance.Event):
                    self._note(stored, cleanup=True)
                    self._dirty.add(stored.stream_id)
                elif isinstance(stored.event, Worker.Event) and not isinstance(stored.event, LEDGER_EVENTS):
                    self._workers.pop(stored.stream_id, None)  # its state or IP may have changed
            self.position = batch[-1].position or self.position
            count += len(batch)
            if len(batch) < limit:
                break
        self._save_checkpoint()
        return count

    def _note(self, stored: StoredEvent, *, cleanup: bool) -> None:
        event, instance_id = stored.event, stored.stream_id
        if isinstance(event, LabletInstance.InstanceRequested):
            if instance_id not in self._finished:
                self._live.setdefault(instance_id, None)
        elif isinstance(event, LabletInstance.InstanceScheduled):
            self._placed[instance_id] = event.worker_id
        elif isinstance(event, LabletInstance.InstanceRequeued):
            self._placed.pop(instance_id, None)
        elif isinstance(event, LabletInstance.InstanceArchived):
            self._finished.add(instance_id)
        elif isinstance(event, LabletInstance.InstanceTerminated):
            self._finished.add(instance_id)
            self._live.pop(instance_id, None)
            if instance_id in self._cleaned:
                self._cleaned.discard(instance_id)  # our own termination: cleaned up already
            elif cleanup and stored.position is not None:
                self._cleanup.setdefault(instance_id, stored.position)

    def _save_checkpoint(self) -> None:
        """Never past a termination whose lab may still be on CML: after a crash the
        follower reads it again and cleans up."""
        pending = [p - 1 for p in self._cleanup.values()]
        checkpoint = min([self.position, *pending])
        if checkpoint != self._saved_checkpoint:  # passes run twice a second: write only changes
            self.checkpoints.save_checkpoint(self.settings.checkpoint_name, checkpoint)
            self._saved_checkpoint = checkpoint

    # == passes ======================================================================
    async def start(self) -> None:
        """Re-scan the log, then reconcile CML with it (run once, before the first pass)."""
        if self._started:
            return
        self._started = True
        self.rescan()
        self.poll_log()
        await self.reconcile()

    async def run_pass(self, *, wait: bool = True) -> int:
        """Look at every instance that changed or is due; returns how many looks started.

        ``wait=False`` (the background loop) leaves long steps (a lab booting) running as
        tasks while later passes handle other instances; ``wait=True`` returns once every
        look is done (tests, simulation).
        """
        await self.start()
        self.poll_log()
        now = self.clock.now()
        due = sorted(
            instance_id
            for instance_id in {*self._live, *self._cleanup}
            if instance_id not in self._tasks and self._is_due(instance_id, now)
        )
        for instance_id in due:
            self._dirty.discard(instance_id)
            task = asyncio.ensure_future(self._look(instance_id))
            self._tasks[instance_id] = task
            task.add_done_callback(lambda t, i=instance_id: self._task_done(i, t))
        if wait:
            while self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        if self._last_reconcile is None or now - self._last_reconcile >= self.settings.reconcile_interval:
            await self.reconcile()
        if wait:
            self._save_checkpoint()
        return len(due)

    def _task_done(self, instance_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(instance_id, None)
        if not task.cancelled() and task.exception() is not None:  # retrieved: not "never retrieved"
            log.error("instance controller task for %s ended with %r", instance_id, task.exception())

    def _is_due(self, instance_id: str, now: datetime) -> bool:
        if instance_id in self._dirty:
            return True
        at = self._live.get(instance_id) if instance_id in self._live else self._retry_at.get(instance_id)
        return at is None or at <= now

    def next_due(self) -> datetime | None:
        """The earliest time a look is due (None: only new events will wake the controller)."""
        times = [at for at in self._live.values() if at is not None]
        times += [self._retry_at.get(i, self.clock.now()) for i in self._cleanup]
        if self._last_reconcile is not None:
            times.append(self._last_reconcile + self.settings.reconcile_interval)
        return min(times, default=None)

    def due_at(self, instance_id: str) -> datetime | None:
        """When the controller will look at a live instance next (None: now, or not live)."""
        return self._live.get(instance_id)

    @property
    def live_instances(self) -> list[str]:
        return sorted(self._live)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def _look(self, instance_id: str) -> None:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:  # a caller may use a loop per pass
            self._semaphore = (loop, asyncio.Semaphore(self.settings.concurrency))
        async with self._semaphore[1]:
            try:
                await self._drive(instance_id)
            except Exception:  # noqa: BLE001 - one instance's failure must not stop the others
                log.exception("instance controller failed on %s; looking again later", instance_id)
                self._retry_later(instance_id)
                if instance_id in self._live:
                    self._live[instance_id] = self._retry_at[instance_id]

    async def _drive(self, instance_id: str) -> None:
        self._retry_at.pop(instance_id, None)
        instance: LabletInstance | None = None
        for _ in range(MAX_STEPS_PER_LOOK):
            if instance is None:
                instance = self._load(instance_id)
                if instance is None:
                    self._forget(instance_id)
                    return
            try:
                progressed = await self._step(instance, self.clock.now())
            except ConcurrencyConflict:
                instance = None  # someone else changed it meanwhile: read again and re-decide
                continue
            if not progressed:
                break
            # A step that progressed saved the instance: the object is the stored state, unless
            # the save left it stale (a conflict raised above), so it is not read again.
        if instance is None or instance.state is S.TERMINATED:
            return
        if instance_id not in self._live:
            return  # terminated by another writer while we looked: the log brings it to cleanup
        times = [t for t in (next_look(instance, self.settings), self._retry_at.get(instance_id)) if t]
        self._live[instance_id] = min(times, default=None) or self.clock.now() + self.settings.step_retry_delay

    def _forget(self, instance_id: str) -> None:
        self._live.pop(instance_id, None)
        self._cleanup.pop(instance_id, None)
        self._restart_checked.pop(instance_id, None)

    def _retry_later(self, instance_id: str, delay: timedelta | None = None) -> None:
        self._retry_at[instance_id] = self.clock.now() + (delay or self.settings.step_retry_delay)

    # == one step ====================================================================
    async def _step(self, instance: LabletInstance, now: datetime) -> bool:
        """Do what is due for ``instance`` now; True if something was saved (look again)."""
        if instance.state is S.TERMINATED:
            await self._clean_up(instance)
            return False
        deadline = watchdog_deadline(instance, self.settings)
        if deadline is not None and now >= deadline.at:
            self._overdue(instance, deadline.outcome, deadline.explanation, now)
            return True
        state = instance.state
        if state is S.INSTANTIATING:
            return await self._instantiating(instance, now)
        if state in (S.READY, S.RUNNING):
            if state is S.RUNNING and not await self._lab_running_after_restart(instance):
                return False
            step = scheduled_step(instance)
            if step is not None and step.step is Step.END_OF_TIMESLOT and now >= step.at:
                ctx = self._ctx(now, "timeslot_end")
                if instance.grading_enabled:
                    instance.start_collection(ctx, trigger="timeslot_end")
                else:
                    instance.request_stop("timeslot_end", ctx)
                self.store.save(instance)
                return True
            return False
        if state is S.COLLECTING:
            return await self._collect(instance, now)
        if state is S.STOPPING:
            return await self._stop(instance, now)
        if state is S.STOPPED:
            if now < archive_due(instance):
                return False
            return await self._archive(instance, now)
        if state is S.ARCHIVED:
            instance.terminate(None, self._ctx(now, "archived"), detail="lab archived")
            self.store.save(instance)
            return True
        return False  # PENDING, SCHEDULED (the scheduler's), GRADING (the grader's)

    def _ctx(self, now: datetime, cause: str) -> CommandContext:
        return CommandContext(at=now, actor=self.settings.actor, causation_id=f"instance-controller:{cause}")

    # -- the watchdog ------------------------------------------------------------------
    def _overdue(self, instance: LabletInstance, outcome: Outcome, explanation: str, now: datetime) -> None:
        ctx = self._ctx(now, f"watchdog:{instance.state.value}")
        log.warning("instance %s overdue in %s: %s", instance.id, instance.state.value, explanation)
        if outcome is Outcome.NO_SHOW:
            instance.request_stop("no_show", ctx)
            self.store.save(instance)
        elif outcome is Outcome.GRADING_TIMEOUT:
            instance.fail_grading(explanation, ctx)
            self.store.save(instance)
        else:
            self._terminate(instance, "stuck_timeout", explanation, ctx)

    def _terminate(self, instance: LabletInstance, reason: str, detail: str, ctx: CommandContext) -> None:
        """Forced termination and the capacity release on the worker, in one save."""
        held_on = instance.worker_id if instance.holds_capacity else None
        instance.terminate(reason, ctx, detail=detail)
        self._save_with_release(instance, held_on, ctx, f"instance terminated ({reason})")

    def _save_with_release(self, instance: LabletInstance, worker_id: str | None, ctx: CommandContext,
                           reason: str) -> None:
        changed: list[Any] = [instance]
        worker = self._worker(worker_id) if worker_id else None
        if worker is not None and worker.release(instance.id, ctx, reason=reason):
            changed.append(worker)
        self.store.save(*changed)

    # -- INSTANTIATING -------------------------------------------------------------------
    async def _instantiating(self, instance: LabletInstance, now: datetime) -> bool:
        if instance.awaiting_retry:
            at = self._next_attempt_at(instance)
            if now < at:
                self._retry_at[instance.id] = at
                return False
            instance.start_instantiation(instance.instantiation_attempt + 1, self._ctx(now, "retry"))
            self.store.save(instance)
            return True
        worker = self._worker_info(instance.worker_id)
        if worker is None or worker.state in GONE:
            self._terminate(instance, "worker_lost", f"worker {instance.worker_id} is gone "
                            f"({worker.state.value if worker else 'unknown'}) during instantiation",
                            self._ctx(now, "worker_lost"))
            return True
        if worker.state not in REACHABLE or not worker.ip:
            self._retry_later(instance.id, self.settings.worker_wait)  # booked ahead of the worker's boot
            return False
        endpoint = self.endpoint_for(worker.worker_id, worker.ip)
        title = naming.lab_title(instance)
        lab_id: str | None = None
        try:
            lab_id = await self.cml.find_lab_by_title(endpoint, title)
            if lab_id is None:
                lab_yaml = await self._lab_yaml(instance)
                lab_id = await self.cml.import_lab(endpoint, lab_yaml, title)
            if instance.cml_lab_id != lab_id:
                instance.record_lab_imported(lab_id, self._ctx(self.clock.now(), "lab_imported"))
                self.store.save(instance)
            state = await self.cml.lab_state(endpoint, lab_id)
            if state.status is not LabStatus.STARTED:
                await self.cml.start_lab(endpoint, lab_id)
            if not self._lab_start_recorded(instance):
                instance.record_lab_started(self._ctx(self.clock.now(), "lab_started"))
                self.store.save(instance)
            await self.cml.wait_until_booted(endpoint, lab_id, self.settings.boot_timeout_seconds)
        except (CmlError, ArtifactError, InvalidInput) as error:
            await self._attempt_failed(instance, endpoint, lab_id, error)
            return True
        session = user_session(
            instance, self._version(instance), host=worker.ip, lab_id=lab_id,
            login_url_template=self.settings.login_url_template,
        )
        instance.mark_ready(session, self._ctx(self.clock.now(), "lab_booted"))
        self.store.save(instance)
        return True

    def _lab_start_recorded(self, instance: LabletInstance) -> bool:
        return any(
            isinstance(s.event, LabletInstance.LabStarted) and s.event.attempt == instance.instantiation_attempt
            for s in self.store.read_stream(instance.id)
        )

    def _next_attempt_at(self, instance: LabletInstance) -> datetime:
        failed_at = max(
            (s.event.timestamp for s in self.store.read_stream(instance.id)
             if isinstance(s.event, LabletInstance.InstantiationFailed)),
            default=instance.entered_at(S.INSTANTIATING) or self.clock.now(),
        )
        return failed_at + self.settings.retry_delay * 2 ** max(instance.retry_count - 1, 0)

    async def _lab_yaml(self, instance: LabletInstance) -> str:
        uri = instance.lab_yaml_uri
        if uri is None:  # instantiation started without a prepared YAML: the definition's own
            version = self._version(instance)
            if version is None:
                raise InvalidInput("definition", f"{instance.definition_name} {instance.definition_version} "
                                   "is not published")
            uri = version.lab_yaml_uri
        text = (await asyncio.to_thread(self.artifacts.get, uri)).decode("utf-8")
        if "${" in text:  # placeholders left (rewriting parses the document: skip when none)
            text = rewrite_ports(text, dict(instance.allocated_ports)).text
        return text

    async def _attempt_failed(
        self, instance: LabletInstance, endpoint: CmlEndpoint, lab_id: str | None, error: Exception
    ) -> None:
        """Delete what the attempt left on CML, then record the failure (retry or terminate).

        The lab goes first: if we crash in between, the attempt simply runs again.
        """
        text = f"{type(error).__name__}: {error}"
        log.warning("instantiation of %s failed (attempt %d): %s", instance.id, instance.instantiation_attempt, text)
        try:
            if lab_id is None:
                lab_id = await self.cml.find_lab_by_title(endpoint, naming.lab_title(instance))
            if lab_id is not None:
                await self.cml.delete_lab(endpoint, lab_id)
        except CmlError as cleanup_error:  # the next attempt (or the cleanup) finds it by title
            log.warning("could not delete the lab of failed attempt of %s: %s", instance.id, cleanup_error)
        retryable = isinstance(error, CmlLabNotFound) or bool(getattr(error, "retryable", False))
        ctx = self._ctx(self.clock.now(), "instantiation_failed")
        if not retryable:
            self._terminate(instance, "instantiation_failed", text, ctx)
            return
        held_on = instance.worker_id
        if not instance.instantiation_failed(text, ctx):  # retries exhausted: terminated
            self._save_with_release(instance, held_on, ctx, "instance terminated (max_retries_exceeded)")
        else:
            self.store.save(instance)

    # -- READY / RUNNING -----------------------------------------------------------------
    async def _lab_running_after_restart(self, instance: LabletInstance) -> bool:
        """A lab restarted (STOPPED → RUNNING) must run on CML again; False to look later."""
        stopped, running = instance.entered_at(S.STOPPED), instance.entered_at(S.RUNNING)
        if stopped is None or running is None or running < stopped:
            return True  # never stopped: its lab has run since READY
        if self._restart_checked.get(instance.id) == running:
            return True
        endpoint = self._endpoint(instance)
        if endpoint is None:
            self._retry_later(instance.id, self.settings.worker_wait)
            return False
        try:
            lab_id = await self._running_lab(instance, endpoint)
            state = await self.cml.lab_state(endpoint, lab_id)
            if state.status is not LabStatus.STARTED:
                await self.cml.start_lab(endpoint, lab_id)
            await self.cml.wait_until_booted(endpoint, lab_id, self.settings.boot_timeout_seconds)
        except CmlError as error:
            log.warning("restart of the lab of %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        self._restart_checked[instance.id] = running
        return True

    # -- COLLECTING ----------------------------------------------------------------------
    async def _collect(self, instance: LabletInstance, now: datetime) -> bool:
        endpoint = self._endpoint(instance)
        if endpoint is None:
            self._retry_later(instance.id, self.settings.worker_wait)
            return False
        try:
            lab_id = await self._running_lab(instance, endpoint)
            configs = await self.cml.node_configs(endpoint, lab_id)
            collected_at = self.clock.now()
            evidence = {
                "instance_id": instance.id, "lab_id": lab_id, "worker_id": instance.worker_id,
                "collected_at": collected_at.isoformat(), "node_configs": configs,
            }
            uri = await asyncio.to_thread(
                self.artifacts.put, naming.evidence_key(instance),
                json.dumps(evidence, sort_keys=True, indent=1).encode("utf-8"), "application/json",
            )
        except (CmlError, ArtifactError) as error:
            log.warning("collection of %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        version = self._version(instance)
        session = {
            "session_id": naming.grading_session_id(instance),
            "instance_id": instance.id,
            "definition_name": instance.definition_name,
            "definition_version": instance.definition_version,
            "grading_rules_uri": version.grading_rules_uri if version else None,
            "evidence_uri": uri,
            "nodes": sorted(configs),
            "collected_at": collected_at.isoformat(),
            "owner_id": instance.owner_id,
        }
        instance.start_grading(session, self._ctx(collected_at, "collected"))
        self.store.save(instance)
        return True

    # -- STOPPING, STOPPED ---------------------------------------------------------------
    async def _stop(self, instance: LabletInstance, now: datetime) -> bool:
        try:
            if instance.score_report is not None:
                await asyncio.to_thread(
                    self.artifacts.put, naming.score_report_key(instance),
                    json.dumps(instance.score_report.to_dict(), sort_keys=True).encode("utf-8"), "application/json",
                )
            endpoint = self._endpoint(instance)
            if endpoint is not None:
                lab_id = await self._find_lab(instance, endpoint)
                if lab_id is not None:
                    await self.cml.stop_lab(endpoint, lab_id)
            elif not self._worker_gone(instance):
                self._retry_later(instance.id, self.settings.worker_wait)
                return False
        except (CmlError, ArtifactError) as error:
            log.warning("stopping %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        instance.mark_stopped(self._ctx(self.clock.now(), "lab_stopped"))
        self.store.save(instance)
        return True

    async def _archive(self, instance: LabletInstance, now: datetime) -> bool:
        if not await self._delete_lab(instance):
            return False
        ctx = self._ctx(self.clock.now(), "lab_deleted")
        held_on = instance.worker_id
        instance.archive(ctx)
        self._save_with_release(instance, held_on, ctx, "instance archived")
        return True

    # -- TERMINATED ----------------------------------------------------------------------
    async def _clean_up(self, instance: LabletInstance) -> None:
        """No lab on CML and no hold on the worker for a terminated instance."""
        if not await self._delete_lab(instance):
            return  # CML unreachable for now: ``_retry_at`` is set, the checkpoint waits
        if instance.worker_id and instance.termination_reason != "completed":  # archiving released it
            worker = self._worker(instance.worker_id)
            if worker is not None and worker.release(instance.id, self._ctx(self.clock.now(), "cleanup"),
                                                     reason=f"instance terminated ({instance.termination_reason})"):
                self.store.save(worker)
        if instance.id not in self._cleanup:
            self._cleaned.add(instance.id)
        self._forget(instance.id)

    async def _delete_lab(self, instance: LabletInstance) -> bool:
        """True once the instance has no lab on CML (or its worker is gone: nothing left to
        reach; a stopped worker is reconciled when it runs again)."""
        endpoint = self._endpoint(instance)
        if endpoint is None:
            if self._worker_gone(instance) or instance.state is S.TERMINATED:
                return True
            self._retry_later(instance.id, self.settings.worker_wait)
            return False
        try:
            lab_id = await self._find_lab(instance, endpoint)
            if lab_id is not None:
                await self.cml.delete_lab(endpoint, lab_id)
        except CmlError as error:
            log.warning("deleting the lab of %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        return True

    async def _find_lab(self, instance: LabletInstance, endpoint: CmlEndpoint) -> str | None:
        """The instance's lab on CML, by title (the recorded id may be of a deleted attempt)."""
        return await self.cml.find_lab_by_title(endpoint, naming.lab_title(instance))

    async def _running_lab(self, instance: LabletInstance, endpoint: CmlEndpoint) -> str:
        """The lab of an instance past READY: its recorded id, else found by title."""
        lab_id = instance.cml_lab_id or await self._find_lab(instance, endpoint)
        if lab_id is None:
            raise CmlLabNotFound(endpoint.worker_id, naming.lab_title(instance))
        return lab_id

    # == reconciliation ===============================================================
    async def reconcile(self) -> ReconcileReport:
        """Compare each reachable worker's labs with the instances placed on it: the lab of a
        finished instance is stopped, wiped and deleted; labs no instance accounts for are
        reported (the port cannot read a lab's title, so they are not touched).

        A lab's title is its instance's id, so this needs no instance loads; title lookups
        for finished instances happen only on a worker that has labs no live instance
        explains. Once a worker is found clean (or gone), its finished instances are
        forgotten: a later termination is cleaned up through the checkpointed log.
        """
        self._last_reconcile = self.clock.now()
        report = ReconcileReport()
        by_worker: dict[str, list[str]] = {}
        for instance_id, worker_id in self._placed.items():
            by_worker.setdefault(worker_id, []).append(instance_id)
        for worker_id, instance_ids in sorted(by_worker.items()):
            self._workers.pop(worker_id, None)  # read afresh: a periodic pass may follow a long quiet
            worker = self._worker_info(worker_id)
            if worker is None or worker.state in GONE:
                self._forget_finished(instance_ids)  # nothing left to reach
                continue
            if worker.state not in REACHABLE or not worker.ip:
                continue  # stopped or booting: looked at when it runs again
            report.workers += 1
            endpoint = self.endpoint_for(worker.worker_id, worker.ip)
            try:
                await self._reconcile_worker(endpoint, sorted(instance_ids), report)
                self._forget_finished(instance_ids)  # checked: none of them has a lab left
            except CmlError as error:
                log.warning("reconciliation of worker %s failed: %s", worker_id, error)
        return report

    async def _reconcile_worker(self, endpoint: CmlEndpoint, instance_ids: list[str], report: ReconcileReport) -> None:
        labs = set(await self.cml.list_labs(endpoint))
        if not labs:
            return
        finished = [i for i in instance_ids if i in self._finished]
        for instance_id in instance_ids:
            if instance_id not in self._finished:
                lab_id = await self.cml.find_lab_by_title(endpoint, naming.title_for(instance_id))
                if lab_id is not None:
                    labs.discard(lab_id)
        if not labs:
            return  # every lab belongs to a live instance: the usual case
        for instance_id in finished:
            lab_id = await self.cml.find_lab_by_title(endpoint, naming.title_for(instance_id))
            while lab_id is not None and lab_id in labs:
                log.warning("deleting lab %s of finished instance %s on worker %s",
                            lab_id, instance_id, endpoint.worker_id)
                await self.cml.delete_lab(endpoint, lab_id)
                labs.discard(lab_id)
                report.deleted.append((endpoint.worker_id, lab_id, instance_id))
                lab_id = await self.cml.find_lab_by_title(endpoint, naming.title_for(instance_id))
        if labs:
            report.unexplained[endpoint.worker_id] = sorted(labs)
            log.warning("worker %s has labs no instance accounts for: %s", endpoint.worker_id, sorted(labs))

    def _forget_finished(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            if instance_id in self._finished and instance_id not in self._cleanup:
                self._placed.pop(instance_id, None)
                self._finished.discard(instance_id)

    # == helpers ======================================================================
    def _load(self, instance_id: str) -> LabletInstance | None:
        return load_or_none(self.store, instance_id, LabletInstance)

    def _worker(self, worker_id: str | None) -> Worker | None:
        return load_or_none(self.store, worker_id, Worker)

    def _worker_info(self, worker_id: str | None) -> WorkerInfo | None:
        if not worker_id:
            return None
        if worker_id not in self._workers:
            worker = self._worker(worker_id)
            self._workers[worker_id] = WorkerInfo(worker.id, worker.state, worker.ip) if worker else None
        return self._workers[worker_id]

    def _worker_gone(self, instance: LabletInstance) -> bool:
        info = self._worker_info(instance.worker_id)
        return info is None or info.state in GONE

    def _endpoint(self, instance: LabletInstance) -> CmlEndpoint | None:
        info = self._worker_info(instance.worker_id)
        if info is None or info.state not in REACHABLE or not info.ip:
            return None
        return self.endpoint_for(info.worker_id, info.ip)

    def _version(self, instance: LabletInstance) -> DefinitionVersion | None:
        key = (instance.definition_name, instance.definition_version)
        if key not in self._versions:
            try:
                definition = self.store.get(LabletDefinition.stream_id_for(instance.definition_name))
            except NotFound:
                return None  # not cached: it may be published later
            version = definition.versions.get(instance.definition_version)
            if version is None:
                return None
            self._versions[key] = version  # published versions are immutable
        return self._versions[key]


__all__ = [
    "Artifacts", "ControllerStore", "EndpointFor", "InstanceController", "MemoryCheckpoints", "ReconcileReport",
]
