"""What projections and processors receive from the event store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One decoded domain event with its place in the global log.

    ``position`` is the event's global position (the notification id): strictly
    increasing in commit order, but not necessarily contiguous (PostgreSQL leaves gaps
    after a failed save). It is ``None`` only for events read with ``read_stream()``
    on backends that do not return positions per stream.
    """

    position: int | None
    stream_id: str
    version: int
    topic: str
    event: Any  # a domain.base.DomainEvent

    @property
    def event_name(self) -> str:
        return type(self.event).__name__

    @property
    def occurred_at(self) -> datetime:
        return self.event.timestamp
