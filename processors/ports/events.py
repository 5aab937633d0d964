"""The event-log port (read side), as adapters see it; defined in ``projections/`` (decision D6)."""

from projections.events import StoredEvent
from projections.ports import EventFeed, EventSubscription

__all__ = ["EventFeed", "EventSubscription", "StoredEvent"]
