"""Runs projections: follow the log, apply each batch and its checkpoints in ONE transaction.

Exactly-once: a batch's read-model writes and the new checkpoints commit together, so a
crash anywhere leaves either both or neither. Inside that transaction the runner re-reads
(and on PostgreSQL locks) each checkpoint, so several runners over the same read models
(API replicas, a CLI rebuild next to a server) never apply an event twice, and one that
finds a checkpoint behind what it is following re-syncs instead of leaving a hole.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from projections.backoff import Backoff
from projections.daemon import DaemonThread
from projections.events import StoredEvent
from projections.ports import EventFeed
from projections.projection import Projection
from projections.readmodel import ReadModelStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class _Behind(Exception):  # noqa: N818 - control flow, not an error
    """A checkpoint is behind the feed (someone reset it): re-subscribe from it."""


class ProjectionRunner:
    def __init__(
        self,
        events: EventFeed,
        store: ReadModelStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1000,
        backoff: Backoff = Backoff(),
        idle_timeout: float = 0.1,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate projection names: {names}")
        self.events = events
        self.store = store
        self.projections = list(projections)
        self.batch_size = batch_size
        self.backoff = backoff
        self.idle_timeout = idle_timeout
        self._positions: dict[str, int] = {}
        self._changed = threading.Condition()
        self._daemon = DaemonThread("projections", self._follow)
        self._subscription: object | None = None
        self.last_error: BaseException | None = None
        self.failures = 0

    # -- lifecycle ----------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Create tables; reset projections never run or whose version changed.

        Returns the names reset (they are rebuilt by catching up from position 0).
        """
        reset: list[str] = []
        for projection in self.projections:
            stored = self.store.checkpoint(projection.name)
            if stored is None or stored.version != projection.version:
                # Dropped before they are ensured: a new version may index a field (a new
                # column) that the tables of the old version lack.
                self._reset(projection)
                reset.append(projection.name)
            else:
                self.store.ensure_tables(projection.tables)
                self._positions[projection.name] = stored.position
        return reset

    def start(self) -> None:
        """Prepare, then follow the log in a background thread."""
        if self.running:
            return
        for name in self.prepare():
            log.info("projection %s is new or changed version: rebuilding", name)
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

    # -- positions ------------------------------------------------------------------------
    def position(self, name: str | None = None) -> int:
        """Checkpoint of one projection, or the lowest of all (what every read model has)."""
        if name is not None:
            return self._positions.get(name, 0)
        return min(self._positions.values(), default=0) if self.projections else 0

    def lag(self) -> int:
        """Events (by position) not yet applied by the slowest projection."""
        return max(0, self.events.max_position() - self.position())

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """True as soon as every projection has committed ``position`` (woken on commit)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.position() >= position, timeout)

    # -- synchronous work -------------------------------------------------------------------
    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply everything up to the current end of the log, in this thread. Returns count."""
        if not self._positions:
            self.prepare()
        total = self.events.max_position()
        return self._replay(self.projections, total, progress)

    def rebuild(self, projection: Projection | str, progress: Progress | None = None) -> int:
        """Drop one projection's tables and checkpoint and replay it from position 0.

        Pauses this runner's thread meanwhile. ``progress(done, total)`` is called after
        each batch with positions. Returns the number of events replayed.
        """
        target = self._find(projection)
        was_running = self.running
        if was_running:
            self.stop()
        try:
            self._reset(target)
            return self._replay([target], self.events.max_position(), progress)
        finally:
            if was_running:
                self.start()

    def rebuild_all(self, progress: Progress | None = None) -> int:
        was_running = self.running
        if was_running:
            self.stop()
        try:
            for projection in self.projections:
                self._reset(projection)
            return self._replay(self.projections, self.events.max_position(), progress)
        finally:
            if was_running:
                self.start()

    # -- internals ----------------------------------------------------------------------------
    def _find(self, projection: Projection | str) -> Projection:
        name = projection if isinstance(projection, str) else projection.name
        for candidate in self.projections:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no projection named {name!r}")

    def _reset(self, projection: Projection) -> None:
        self.store.drop_tables(projection.tables)
        self.store.ensure_tables(projection.tables)
        with self.store.transaction() as tx:
            tx.save_checkpoint(projection.name, 0, projection.version)
        self._set_positions({projection.name: 0})

    def _replay(self, projections: Sequence[Projection], total: int, progress: Progress | None) -> int:
        after = min(self._positions.get(p.name, 0) for p in projections)
        count = 0
        while True:
            batch = self.events.read_all(after=after, limit=self.batch_size)
            if not batch:
                break
            try:
                self._apply(batch, after, projections)
            except _Behind:
                self._reload_positions(projections)
                after = min(self._positions[p.name] for p in projections)
                continue
            after = batch[-1].position or after
            count += len(batch)
            if progress is not None:
                progress(after, max(total, after))
        return count

    def _follow(self) -> None:
        attempt = 0
        while not self._daemon.stopping.is_set():
            after = self.position()
            try:
                with self.events.subscribe(after=after) as subscription:
                    self._subscription = subscription
                    if self._daemon.stopping.is_set():
                        break
                    while not self._daemon.stopping.is_set():
                        batch = subscription.next_batch(timeout=self.idle_timeout)
                        for start in range(0, len(batch), self.batch_size):
                            chunk = batch[start : start + self.batch_size]
                            self._apply(chunk, after, self.projections)
                            after = chunk[-1].position or after
                            attempt = 0
            except _Behind:
                self._reload_positions(self.projections)
                continue
            except Exception as error:  # noqa: BLE001 - retried forever, never skipped
                attempt += 1
                self.failures += 1
                self.last_error = error
                delay = self.backoff.delay(attempt)
                log.exception("projection batch failed (attempt %d), retrying in %.2fs",
                              attempt, delay)
                self._daemon.stopping.wait(delay)
            finally:
                self._subscription = None

    def _apply(self, batch: list[StoredEvent], after: int, projections: Sequence[Projection]) -> None:
        """Apply ``batch`` (events after position ``after``) and checkpoints in one transaction."""
        last = batch[-1].position
        assert last is not None
        committed: dict[str, int] = {}
        with self.store.transaction() as tx:
            for projection in projections:
                stored = tx.checkpoint(projection.name)
                position = stored.position if stored is not None else 0
                if position < after:
                    # Reset (or rebuilt) behind our feed: following on would leave a hole.
                    raise _Behind(projection.name)
                if position >= last:
                    committed[projection.name] = position  # another runner did it
                    continue
                for stored_event in batch:
                    if stored_event.position is not None and stored_event.position > position:
                        projection.handle(stored_event, tx)
                tx.save_checkpoint(projection.name, last, projection.version)
                committed[projection.name] = last
        self._set_positions(committed)

    def _reload_positions(self, projections: Sequence[Projection]) -> None:
        stored = self.store.checkpoints()
        self._set_positions({p.name: stored[p.name].position if p.name in stored else 0
                             for p in projections})

    def _set_positions(self, positions: dict[str, int]) -> None:
        with self._changed:
            self._positions.update(positions)
            self._changed.notify_all()
