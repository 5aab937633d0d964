"""Subscriptions with the same behaviour on every backend.

All three are the library's ``ListenNotifySubscription`` (a thread pulls notifications
after the last position into a queue whenever it is woken up); they differ only in what
wakes the puller: PostgreSQL ``LISTEN/NOTIFY`` (the library's ``PostgresSubscription``),
an in-process event for the in-memory recorder (``POPOSubscription``), and a timer for
SQLite, which has no notification mechanism (``PollingSubscription``, ours).

``EventSubscription`` wraps any of them, decodes notifications into ``StoredEvent`` and
hands out whole pulled batches, so followers can apply a batch in one transaction.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    ShutDown,
)

from processors.ports.events import StoredEvent

DEFAULT_POLL_INTERVAL = 0.005


class PollingSubscription(ListenNotifySubscription[ApplicationRecorder]):
    """Wakes the library's puller every ``poll_interval`` seconds (for SQLite)."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._poll_interval = poll_interval
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="event-poll", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stopped.wait(self._poll_interval):
            self._has_been_notified.set()

    def stop(self) -> None:
        self._stopped.set()
        super().stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._ticker.join()


class EventSubscription:
    """Decoded, batch-capable view of a library subscription (see module docstring)."""

    def __init__(
        self,
        inner: ListenNotifySubscription[Any],
        decode: Callable[[Notification], StoredEvent],
        safety_poll: float | None = None,
    ) -> None:
        self._inner = inner
        self._decode = decode
        self._buffer: deque[StoredEvent] = deque()
        self._closed = False
        self._stopped = threading.Event()
        if safety_poll is not None:
            # The library starts its first pull before its listener is registered (LISTEN
            # on PostgreSQL, the in-process listener in memory): an event committed in that
            # window would wait for the next notification. A slow extra wake-up bounds it.
            threading.Thread(target=self._tick, args=(safety_poll,), daemon=True,
                             name="event-safety-poll").start()

    def _tick(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self._inner._has_been_notified.set()  # noqa: SLF001

    def __enter__(self) -> EventSubscription:
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._stopped.set()
        self._inner.__exit__(exc_type, exc, tb)

    def stop(self) -> None:
        self._closed = True
        self._stopped.set()
        self._inner.stop()

    def __iter__(self) -> Iterator[StoredEvent]:
        return self

    def __next__(self) -> StoredEvent:
        while not self._buffer:
            if self._closed:
                raise StopIteration
            self._buffer.extend(self.next_batch(timeout=None))
        return self._buffer.popleft()

    def next_batch(self, timeout: float | None = None) -> list[StoredEvent]:
        """Everything already pulled, waiting up to ``timeout`` s for something (None: forever).

        Returns ``[]`` on timeout or once stopped; re-raises an error of the puller thread.
        """
        if self._buffer:
            batch = list(self._buffer)
            self._buffer.clear()
            return batch
        notifications: list[Notification] = []
        q = self._inner._notifications_queue  # noqa: SLF001 - the library's hand-off queue
        try:
            notifications.extend(q.get(timeout=timeout))
            while True:  # drain what is already there, without waiting
                notifications.extend(q.get(block=False))
        except (queue.Empty, ShutDown):
            pass
        error = self._inner._thread_error  # noqa: SLF001
        if error is not None:
            raise error
        if self._inner._has_been_stopped:  # noqa: SLF001
            self._closed = True
        return [self._decode(n) for n in notifications]
