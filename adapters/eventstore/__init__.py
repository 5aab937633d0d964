"""Event store wiring: one Application for all aggregates over memory, SQLite or PostgreSQL."""

from adapters.eventstore.factory import open_event_store
from adapters.eventstore.store import BackendKind, EventStore
from processors.ports.events import StoredEvent

__all__ = ["BackendKind", "EventStore", "StoredEvent", "open_event_store"]
