"""Application services: one module per resource; each command loads, decides, saves (retrying on conflicts)."""

from __future__ import annotations

from typing import Any, Protocol


class AggregateStore(Protocol):
    """What a command handler needs from the event store (``adapters.eventstore.EventStore``)."""

    def save(self, *aggregates: Any) -> int:
        """Append the pending events atomically; the last global position (``max_position`` if none)."""
        ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any:
        """The aggregate, or ``domain.errors.NotFound``."""
        ...

    def exists(self, aggregate_id: str) -> bool: ...

    def max_position(self) -> int: ...
