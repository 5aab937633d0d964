"""One poller per process fans the event log out to every open SSE stream.

Each stream used to poll the store itself, ten times a second: 1 000 open streams were
10 000 queries a second, a booking took 2.6 s and memory was not given back after they
closed. Now a single task reads the log after the last position it saw, renders each
event once and offers it to every subscriber's bounded queue. A subscriber that falls
``QUEUE_SIZE`` events behind is dropped (its stream ends; the client reconnects with
``Last-Event-ID`` and catches up from the store) rather than letting its queue grow.
The task starts with the first subscriber and stops with the last, so nothing is kept
once every stream has closed. One hub per process and event loop (the API's).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from sse_starlette.event import ServerSentEvent

from api.logging import log

POLL_SECONDS = 0.1  # how soon a new event reaches the streams
BATCH = 500
QUEUE_SIZE = 1000  # events a slow stream may fall behind before it is dropped
ERROR_BACKOFF_SECONDS = 1.0  # after a failed read of the log, before the next try


def release_freed_memory() -> None:
    """Hand memory freed by closed streams back to the OS.

    CPython frees a closed stream's objects at once, but glibc keeps the freed heap for
    reuse, so the process's resident size stays at its peak (92 → 181 MB after 1 000
    streams, never shrinking). ``malloc_trim`` returns the free pages; without glibc it is
    a no-op.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim(0)


SSE_SEPARATOR = "\r\n"  # sse-starlette's default line separator: the streams' wire format


@dataclass(frozen=True)
class Rendered:
    position: int
    name: str
    data: str  # the event's JSON, rendered once for every stream
    wire: bytes = field(init=False, repr=False)  # the whole SSE message, encoded once for every stream

    def __post_init__(self) -> None:
        message = ServerSentEvent(id=str(self.position), event=self.name, data=self.data, sep=SSE_SEPARATOR)
        object.__setattr__(self, "wire", message.encode())


def wire_of(items: list[Rendered]) -> bytes:
    """Several messages as one chunk: one send per stream for a batch, not one per event
    (with 200 streams open, a send per event per stream cut bookings to a quarter)."""
    return b"".join(item.wire for item in items)


@dataclass(eq=False)
class Subscriber:
    joined_at: int  # the hub's position when it joined: later events arrive in ``queue``
    queue: asyncio.Queue[Rendered | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False

    def take_ready(self, first: Rendered) -> tuple[list[Rendered], bool]:
        """``first`` and whatever else is already queued, and whether the stream must end
        (it fell too far behind)."""
        items = [first]
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is None:
                return items, True
            items.append(item)
        return items, False

    def offer(self, item: Rendered) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True  # too slow: free what it holds, end its stream
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class EventHub:
    def __init__(self, read_all: Callable[[int, int], list[Any]], max_position: Callable[[], int],
                 render: Callable[[Any], Rendered], *, poll_seconds: float = POLL_SECONDS) -> None:
        self._read_all = read_all
        self._max_position = max_position
        self._render = render
        self._poll_seconds = poll_seconds
        self._subscribers: set[Subscriber] = set()
        self._position = 0
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def subscribe(self) -> Subscriber:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self.running:
                self._position = await anyio.to_thread.run_sync(self._max_position)
                self._task = asyncio.get_running_loop().create_task(self._poll(), name="sse-hub")
            subscriber = Subscriber(joined_at=self._position)
            self._subscribers.add(subscriber)
            return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        if not self._subscribers and self._task is not None:
            self._task.cancel()  # the last stream closed: stop polling, drop the lock with it
            self._task = None
            self._lock = None
            release_freed_memory()

    async def _poll(self) -> None:
        while self._subscribers:
            after = self._position
            try:
                batch = await anyio.to_thread.run_sync(
                    lambda: [self._render(e) for e in self._read_all(after, BATCH)])
            except Exception:  # noqa: BLE001 - a store outage must not end every stream's feed for good
                log.exception("sse_hub_read_failed", after=after)
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)
                continue
            for item in batch:
                self._position = max(self._position, item.position)
                for subscriber in list(self._subscribers):
                    subscriber.offer(item)
            if len(batch) < BATCH:
                await asyncio.sleep(self._poll_seconds)
