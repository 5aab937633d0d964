"""Follow the event log with a checkpoint, for process managers (at-least-once).

A ``Follower`` calls ``handler(event)`` for every event after its checkpoint, in global
order, and stores the checkpoint only after the handler returned (its commands were
saved). After a crash it resumes from the checkpoint, so the last events may be handled
again: handlers must be idempotent (deterministic command ids, expected versions).
A failing handler is retried with backoff and logged, forever: an event is never skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from projections.backoff import Backoff
from projections.daemon import DaemonThread
from projections.events import StoredEvent
from projections.ports import EventFeed

log = logging.getLogger(__name__)

Handler = Callable[[StoredEvent], None]


class CheckpointStore(Protocol):
    """Where followers keep their positions (the read-model stores implement it)."""

    def load_checkpoint(self, name: str) -> int: ...

    def save_checkpoint(self, name: str, position: int) -> None: ...


class Follower:
    def __init__(
        self,
        name: str,
        events: EventFeed,
        checkpoints: CheckpointStore,
        handler: Handler,
        *,
        topics: Sequence[str] = (),
        backoff: Backoff = Backoff(),
        idle_timeout: float = 0.1,
        batch_size: int = 500,
    ) -> None:
        self.name = name
        self.events = events
        self.checkpoints = checkpoints
        self.handler = handler
        self.topics = tuple(topics)
        self.backoff = backoff
        self.idle_timeout = idle_timeout
        self.batch_size = batch_size
        self._position = checkpoints.load_checkpoint(name)
        self._changed = threading.Condition()
        self._daemon = DaemonThread(f"follower-{name}", self._follow)
        self._subscription: object | None = None
        self.last_error: BaseException | None = None
        self.failures = 0

    # -- state --------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Position of the last event handled and checkpointed."""
        return self._position

    def lag(self) -> int:
        return max(0, self.events.max_position() - self._position)

    def wait_for_position(self, position: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._position >= position, timeout)

    # -- synchronous use (tests, simulation, CLI) ---------------------------------------------
    def catch_up(self) -> int:
        """Handle everything up to the current end of the log; a handler error propagates
        (after the progress so far is checkpointed). Returns how many events were handled."""
        count = 0
        while True:
            batch = self.events.read_all(after=self._position, limit=self.batch_size,
                                         topics=self.topics)
            if not batch:
                return count
            handled = 0
            try:
                for event in batch:
                    self.handler(event)
                    handled += 1
            finally:
                if handled:
                    self._commit(batch[handled - 1])
            count += handled

    # -- background use -----------------------------------------------------------------
    def start(self) -> None:
        self._daemon.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._daemon.stop(timeout, wake=self._end_subscription)

    @property
    def running(self) -> bool:
        return self._daemon.running

    def _end_subscription(self) -> None:
        subscription = self._subscription
        if subscription is not None:
            subscription.stop()  # type: ignore[attr-defined]

    def _follow(self) -> None:
        while not self._daemon.stopping.is_set():
            try:
                with self.events.subscribe(after=self._position, topics=self.topics) as sub:
                    self._subscription = sub
                    while not self._daemon.stopping.is_set():
                        batch = sub.next_batch(timeout=self.idle_timeout)
                        if batch and not self._handle_batch(batch):
                            return  # stopping while an event kept failing
            except Exception:  # noqa: BLE001 - the feed failed: re-subscribe after a pause
                log.exception("follower %s lost its subscription; re-subscribing", self.name)
                self._daemon.stopping.wait(self.backoff.maximum)
            finally:
                self._subscription = None

    def _handle_batch(self, batch: list[StoredEvent]) -> bool:
        """Handle a batch; checkpoint once at the end, or before retrying a failing event
        (so a long outage doesn't hold back the progress made before it)."""
        last_done: StoredEvent | None = None
        committed: StoredEvent | None = None
        try:
            for event in batch:
                attempt = 0
                while True:
                    try:
                        self.handler(event)
                        break
                    except Exception as error:  # noqa: BLE001 - retried, never skipped
                        attempt += 1
                        self.failures += 1
                        self.last_error = error
                        if last_done is not None and last_done is not committed:
                            self._commit(last_done)
                            committed = last_done
                        delay = self.backoff.delay(attempt)
                        log.exception(
                            "follower %s failed on %s@%s (position %s, attempt %d); "
                            "retrying in %.2fs", self.name, event.stream_id, event.version,
                            event.position, attempt, delay,
                        )
                        if self._daemon.stopping.wait(delay):
                            return False
                last_done = event
            return True
        finally:
            if last_done is not None and last_done is not committed:
                self._commit(last_done)

    def _commit(self, event: StoredEvent) -> None:
        assert event.position is not None
        self.checkpoints.save_checkpoint(self.name, event.position)
        with self._changed:
            self._position = event.position
            self._changed.notify_all()
