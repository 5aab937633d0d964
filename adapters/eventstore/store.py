"""``EventStore``: the small interface the rest of LRM uses to reach the event log."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import IntegrityError, ListenNotifySubscription, Notification
from eventsourcing.persistence import StoredEvent as LibraryStoredEvent

from adapters.eventstore.application import LrmApplication
from adapters.eventstore.subscription import (
    DEFAULT_POLL_INTERVAL,
    EventSubscription,
    PollingSubscription,
)
from domain.errors import ConcurrencyConflict, NotFound
from processors.ports.events import StoredEvent

BackendKind = Literal["memory", "sqlite", "postgres", "esdb"]

# Extra wake-up of notification-driven subscriptions (see EventSubscription).
SAFETY_POLL_INTERVAL = 0.1

# Streams loaded through the library's aggregate cache with fast-forward: a load after the
# first reads only the events appended since (by this process or any other), applies them
# to the cached copy and hands out a deep copy. Without it every load replays the whole
# stream, and a worker's stream holds its whole day of reservations (a 600-event worker:
# ~11 ms a load replayed, ~0.15 ms cached; docs/benchmarks.md "Aggregate loads"); released
# reservations are no longer in the cached ledger, so they cost nothing on later loads.
# Only streams without personal data: a cached copy would outlive a person's erasure
# (instance streams are short, and replayed).
CACHED_STREAM_PREFIXES = ("Worker-", "WorkerTemplate-")
AGGREGATE_CACHE_SIZE = 5_000


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's ``project_aggregate`` without its per-event ``isinstance`` against a
    runtime-checkable protocol (a third of the cost of a replay); every stored event is
    one of our ``DomainEvent`` classes, which all have ``mutate``."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class EventStore:
    """Saves aggregates, loads them, and reads/follows the global event log.

    Positions are the library's notification ids: ordered by commit, gaps possible.
    """

    def __init__(
        self,
        app: LrmApplication,
        kind: BackendKind,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.kind = kind
        self._cached = Repository(event_store=app.events, cache_maxsize=AGGREGATE_CACHE_SIZE, fastforward=True)
        self.poll_interval = poll_interval
        self._on_close = on_close

    # -- write side ---------------------------------------------------------------
    def save(self, *aggregates: Any) -> int:
        """Append the aggregates' pending events atomically; return the last position.

        Raises ``ConcurrencyConflict`` when another writer appended to one of the streams
        since the aggregate was loaded (the aggregate object is then stale: reload it).
        With nothing pending, returns the current ``max_position()``.
        """
        try:
            recordings = self.app.save(*aggregates)
        except IntegrityError as error:
            streams = ", ".join(sorted({str(getattr(a, "id", a)) for a in aggregates}))
            raise ConcurrencyConflict(f"stale version of {streams}: reload and retry") from error
        if not recordings:
            return self.max_position()
        return recordings[-1].notification.id

    # -- aggregates -----------------------------------------------------------------
    def get(self, aggregate_id: str, version: int | None = None) -> Any:
        """The aggregate as of ``version`` (default: latest); ``NotFound`` if absent."""
        repository = self._cached if aggregate_id.startswith(CACHED_STREAM_PREFIXES) else self.app.repository
        try:
            return repository.get(aggregate_id, version=version, projector_func=_project)
        except AggregateNotFoundError as error:
            raise NotFound(f"{aggregate_id} not found") from error

    def exists(self, aggregate_id: str) -> bool:
        return aggregate_id in self.app.repository

    # -- the log --------------------------------------------------------------------
    def read_all(
        self, after: int = 0, limit: int = 1000, topics: Sequence[str] = ()
    ) -> list[StoredEvent]:
        """Up to ``limit`` events with position > ``after``, in global order."""
        notifications = self.app.recorder.select_notifications(
            start=after, limit=limit, topics=topics, inclusive_of_start=False
        )
        return [self._decode(n) for n in notifications]

    def read_stream(self, stream_id: str, after_version: int | None = None) -> list[StoredEvent]:
        """One stream's events in version order.

        ``position`` is ``None`` here: the library's per-stream query does not return the
        notification id on SQLite or PostgreSQL, and a second query per event is not worth
        it (timelines order by version; use ``read_all`` when positions matter).
        """
        records = self.app.recorder.select_events(stream_id, gt=after_version)
        return [self._decode(r) for r in records]

    def max_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def subscribe(self, after: int = 0, topics: Sequence[str] = ()) -> EventSubscription:
        """Follow the log from ``after`` (exclusive); use as a context manager."""
        inner: ListenNotifySubscription[Any]
        if self.kind == "sqlite":
            inner = PollingSubscription(
                self.app.recorder, gt=after, topics=topics, poll_interval=self.poll_interval
            )
            return EventSubscription(inner, self._decode)
        # PostgreSQL LISTEN/NOTIFY, in-memory listeners: the library's own.
        inner = self.app.recorder.subscribe(gt=after, topics=topics)  # type: ignore[assignment]
        return EventSubscription(inner, self._decode, safety_poll=SAFETY_POLL_INTERVAL)

    # -- lifecycle ------------------------------------------------------------------
    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        self.app.recorder.max_notification_id()

    def close(self) -> None:
        self.app.close()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, record: LibraryStoredEvent) -> StoredEvent:
        position = record.id if isinstance(record, Notification) else None
        return StoredEvent(
            position=position,
            stream_id=str(record.originator_id),
            version=record.originator_version,
            topic=record.topic,
            event=self.app.mapper.to_domain_event(record),
        )
