"""Passes and looks: when the controller looks at an instance, and a look's loop of steps
(each step saved before the next; a conflict re-reads and decides again)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from domain.errors import ConcurrencyConflict
from domain.instance import InstanceState, LabletInstance
from processors.instances.policy import next_look

if TYPE_CHECKING:  # a part of InstanceController: runs with the state ControllerCore sets up
    from processors.instances.core import ControllerCore as _Controller
else:
    _Controller = object

log = logging.getLogger(__name__)

S = InstanceState

MAX_STEPS_PER_LOOK = 24  # a look ends when nothing more is due; this only bounds conflict storms


class Passes(_Controller):
    """A pass looks at every instance that changed or is due; a look runs steps until none is due."""

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
        # Candidates (a superset of what is due): live ones whose time came, changed ones, and
        # the few terminations awaiting clean-up; ``_is_due`` decides as before.
        candidates = {*self._live.due(now), *(i for i in self._dirty if i in self._live), *self._cleanup}
        due = sorted(
            instance_id
            for instance_id in candidates
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
        earliest = self._live.earliest()
        times = [earliest] if earliest is not None else []
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
