"""What every part of the instance controller shares: its state (which instances are live and
when to look at them, caches of workers and definitions) and the loads and saves they all use."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.context import CommandContext
from domain.definition import DefinitionVersion, LabletDefinition
from domain.errors import NotFound
from domain.instance import LabletInstance
from domain.worker import Worker, WorkerState
from processors.aggregates import load_or_none
from processors.follower import CheckpointStore
from processors.instances.due_times import DueTimes
from processors.instances.ports import Artifacts, ControllerStore, EndpointFor, MemoryCheckpoints
from processors.instances.settings import LifecycleSettings
from processors.ports.clock import Clock
from processors.ports.cml import CmlEndpoint, CmlGateway


# Workers whose CML can be reached (labs exist there and can be driven).
REACHABLE = frozenset({WorkerState.RUNNING, WorkerState.DRAINING})
GONE = frozenset({WorkerState.FAILED, WorkerState.TERMINATED})


@dataclass(frozen=True)
class WorkerInfo:
    """What the controller needs to reach a worker's CML (loading a worker replays its ledger)."""

    worker_id: str
    state: WorkerState
    ip: str | None


class ControllerCore:
    """The state every part of the controller shares, and the loads and saves they all use."""

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
        self._live = DueTimes()  # instance id -> when to look next (None: now)
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

    def _ctx(self, now: datetime, cause: str) -> CommandContext:
        return CommandContext(at=now, actor=self.settings.actor, causation_id=f"instance-controller:{cause}")

    def _forget(self, instance_id: str) -> None:
        self._live.pop(instance_id, None)
        self._cleanup.pop(instance_id, None)
        self._restart_checked.pop(instance_id, None)

    def _retry_later(self, instance_id: str, delay: timedelta | None = None) -> None:
        self._retry_at[instance_id] = self.clock.now() + (delay or self.settings.step_retry_delay)

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
