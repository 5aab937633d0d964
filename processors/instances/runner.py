"""Runs an ``InstanceController`` on its own asyncio loop in a daemon thread.

The CML gateway is built inside that thread (the REST client's HTTP connections belong to
the loop that opened them). Between passes the loop sleeps until the next due time, at most
``idle_wait`` seconds, or until ``notify()`` says new events were appended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from processors.instances.controller import InstanceController

log = logging.getLogger(__name__)


class InstanceControllerThread:
    def __init__(
        self,
        factory: Callable[[], InstanceController],
        *,
        idle_wait: float = 0.5,
        on_stop: Callable[[InstanceController], Coroutine[Any, Any, None]] | None = None,
        name: str = "instance-controller",
    ) -> None:
        self._factory = factory
        self._idle_wait = idle_wait
        self._on_stop = on_stop
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.controller: InstanceController | None = None
        self.passes = 0
        self.last_error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        """New events were appended: look now instead of at the next tick (any thread)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()
            self._loop = None

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        controller = self.controller = self._factory()
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await controller.run_pass(wait=False)
                    self.passes += 1
                except Exception as error:  # noqa: BLE001 - the store failed: keep going after a pause
                    self.last_error = error
                    log.exception("instance controller pass failed")
                delay = self._idle_wait
                due = controller.next_due()
                if due is not None:
                    delay = min(delay, max((due - controller.clock.now()).total_seconds(), 0.0))
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.01))
                except TimeoutError:
                    pass
        finally:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._on_stop is not None:
                await self._on_stop(controller)
