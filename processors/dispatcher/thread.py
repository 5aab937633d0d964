"""Runs a Dispatcher on its own asyncio loop in a daemon thread, so webhook delivery never
blocks command handling; the methods here are safe to call from any thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from processors.dispatcher.dispatcher import Dispatcher

T = TypeVar("T")


class DispatcherThread:
    def __init__(
        self,
        factory: Callable[[], Dispatcher],
        *,
        name: str = "webhook-dispatcher",
        on_stop: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        # The dispatcher is built inside the loop's thread: its asyncio objects (and the
        # transport's HTTP client) belong to that loop. ``on_stop`` runs there after it
        # closed, e.g. to close the HTTP client.
        self._factory = factory
        self._on_stop = on_stop
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._dispatcher: Dispatcher | None = None
        self._ready = threading.Event()

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None, "not started"
        return self._dispatcher

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._dispatcher = self._factory()
        loop.call_soon(self._ready.set)
        loop.run_forever()
        loop.close()

    def submit(self, make: Callable[[Dispatcher], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Run ``make(dispatcher)`` on the loop, e.g. ``submit(lambda d: d.add(target))``."""
        assert self._loop is not None, "not started"

        async def call() -> T:
            return await make(self.dispatcher)

        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    def call(self, func: Callable[[Dispatcher], T]) -> T:
        """Run a synchronous dispatcher method on the loop and wait for its result."""

        async def wrapped(d: Dispatcher) -> T:
            return func(d)

        return self.submit(wrapped).result()

    def notify(self) -> None:
        """New events were appended (cheap; call after every commit)."""
        if self._loop is not None and self._dispatcher is not None:
            self._loop.call_soon_threadsafe(self._dispatcher.notify)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        on_stop = self._on_stop

        async def close(d: Dispatcher) -> None:
            await d.close()
            if on_stop is not None:
                await on_stop()

        try:
            self.submit(close).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop = None
