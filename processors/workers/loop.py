"""Run a process manager's ``tick()`` in a daemon thread with its own asyncio loop.

A tick runs when the event log grew (something may need doing now), and at least every
``interval`` seconds (the cloud and the clock change without events). The log head is a
cheap query (``max_position``), polled every ``poll`` seconds. A failing tick is logged
and tried again on the next round: a process manager never dies of one bad tick.
Cloud clients built by ``on_start`` (aiobotocore) belong to this thread's loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from projections.daemon import DaemonThread

log = logging.getLogger(__name__)


class TickLoop:
    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[Any] | Any],
        head: Callable[[], int],
        *,
        interval: float = 5.0,
        poll: float = 0.2,
        on_stop: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.name = name
        self._tick = tick
        self._head = head
        self.interval = interval
        self.poll = poll
        self._on_stop = on_stop
        self._daemon = DaemonThread(name, self._main)
        self.ticks = 0
        self.failures = 0
        self.last_error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._daemon.running

    def start(self) -> None:
        self._daemon.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._daemon.stop(timeout)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._run())
            if self._on_stop is not None:
                loop.run_until_complete(self._on_stop())
        finally:
            loop.close()

    async def _run(self) -> None:
        seen = -1
        last = 0.0
        while not self._daemon.stopping.is_set():
            try:
                head = self._head()
            except Exception:  # noqa: BLE001 - the store is down: tick later
                log.exception("%s: cannot read the log head", self.name)
                head = seen
            if head != seen or time.monotonic() - last >= self.interval:
                seen, last = head, time.monotonic()
                await self._once()
            await asyncio.sleep(self.poll)

    async def _once(self) -> None:
        try:
            result = self._tick()
            if inspect.isawaitable(result):
                await result
            self.ticks += 1
        except Exception as error:  # noqa: BLE001 - logged, retried next round
            self.failures += 1
            self.last_error = error
            log.exception("%s: tick failed", self.name)
