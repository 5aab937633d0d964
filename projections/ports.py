"""What projections and processors need from the event store (implemented in adapters)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Protocol

from projections.events import StoredEvent


class EventSubscription(Protocol):
    """A stoppable, context-managed feed of events after a position, in global order.

    Iterating blocks until the next event; ``next_batch`` returns what is available
    (waiting at most ``timeout`` seconds for at least one event) so followers can
    apply a batch in one transaction.
    """

    def __enter__(self) -> EventSubscription: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def __iter__(self) -> Iterator[StoredEvent]: ...

    def __next__(self) -> StoredEvent: ...

    def next_batch(self, timeout: float | None = None) -> list[StoredEvent]: ...

    def stop(self) -> None: ...


class EventFeed(Protocol):
    """The global, ordered event log, read side."""

    def read_all(
        self, after: int = 0, limit: int = 1000, topics: Sequence[str] = ()
    ) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...

    def subscribe(self, after: int = 0, topics: Sequence[str] = ()) -> EventSubscription: ...
