"""In-memory copies of aggregates, kept current by reading the event log.

A process manager decides from the state of many aggregates at once (the autoscaler:
every worker, every live instance, every template). Reading them from the read models
would make its decisions depend on projection lag; loading each from the store on every
tick would cost one stream read per aggregate. A replica applies each new event of the
global log to its copy of the aggregate (``event.mutate``, exactly what ``store.get``
does), so after ``catch_up()`` it equals the store up to the position it has read, and
every tick costs only the events since the last one.

Copies are read-only: commands load a fresh aggregate from the store (optimistic
concurrency), and their events come back here through the log. ``retire(id)`` forgets an
aggregate that will never matter again (a finished instance), so memory follows the live
fleet, not history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from projections.events import StoredEvent

log = logging.getLogger(__name__)


class AggregateSource(Protocol):
    """The event-store calls a replica needs (``adapters.eventstore.EventStore`` has them)."""

    def read_all(self, after: int = 0, limit: int = 1000, topics: Any = ()) -> list[StoredEvent]: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def max_position(self) -> int: ...


class AggregateReplica:
    """Copies of every aggregate of the given classes (matched by stream prefix)."""

    def __init__(self, store: AggregateSource, kinds: Iterable[type], *, batch_size: int = 1000) -> None:
        self.store = store
        self.prefixes = {kind.stream_prefix(): kind for kind in kinds}
        self.batch_size = batch_size
        self.position = 0
        self._aggregates: dict[str, Any] = {}
        self._retired: set[str] = set()

    # -- reading -----------------------------------------------------------------------
    def get(self, aggregate_id: str) -> Any | None:
        return self._aggregates.get(aggregate_id)

    def all(self, kind: type) -> Iterator[Any]:
        """The copies of one class, in id order (deterministic iteration)."""
        for aggregate_id in sorted(self._aggregates):
            aggregate = self._aggregates[aggregate_id]
            if isinstance(aggregate, kind):
                yield aggregate

    def __len__(self) -> int:
        return len(self._aggregates)

    def is_retired(self, aggregate_id: str) -> bool:
        return aggregate_id in self._retired

    # -- following the log -------------------------------------------------------------
    def catch_up(self, until: int | None = None) -> list[StoredEvent]:
        """Apply every event after the last one read; returns the events of watched kinds."""
        seen: list[StoredEvent] = []
        while True:
            batch = self.store.read_all(after=self.position, limit=self.batch_size)
            if not batch:
                return seen
            for stored in batch:
                if until is not None and stored.position is not None and stored.position > until:
                    return seen
                if self._apply(stored):
                    seen.append(stored)
                if stored.position is not None:
                    self.position = stored.position

    def retire(self, aggregate_id: str) -> None:
        """Forget a copy for good; its later events (if any) are ignored."""
        self._aggregates.pop(aggregate_id, None)
        self._retired.add(aggregate_id)

    def _apply(self, stored: StoredEvent) -> bool:
        prefix = stored.stream_id.split("-", 1)[0]
        if prefix not in self.prefixes or stored.stream_id in self._retired:
            return False
        current = self._aggregates.get(stored.stream_id)
        expected = (current.version + 1) if current is not None else stored.version
        if current is None and stored.version != 0 or stored.version != expected:
            # A gap (events read out of order, or the replica started mid-stream): the
            # store is the truth, load the aggregate as it is at this event.
            log.warning("replica reloads %s at version %s", stored.stream_id, stored.version)
            self._aggregates[stored.stream_id] = self.store.get(stored.stream_id, version=stored.version)
            return True
        self._aggregates[stored.stream_id] = stored.event.mutate(current)
        return True
