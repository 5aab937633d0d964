"""Base classes for LRM aggregates and events on the ``eventsourcing`` library.

Conventions (see docs/decisions.md):
- stream ids are ``<Aggregate>-<uuid>`` strings, so EventStoreDB ``$ce-`` category
  streams work; ``INITIAL_VERSION = 0`` so versions match EventStoreDB revisions;
- every event carries ``timestamp`` (exposed as ``occurred_at``), set from the
  command's context, never from a clock read in the domain;
- every event carries ``metadata`` = ``{actor, causation_id, correlation_id}``;
- event ids are derived, not stored: ``uuid5(stream id, version)`` is stable across
  retries and replays (used as CloudEvent id and EventStoreDB event id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate, MetaDomainEvent

from domain.context import CommandContext

EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lablet-resource-manager:event")


def event_id(stream_id: str, version: int) -> UUID:
    """Deterministic id of the event at ``version`` of ``stream_id``."""
    return uuid5(EVENT_ID_NAMESPACE, f"{stream_id}@{version}")


def stream_id(aggregate_name: str, key: UUID | None = None) -> str:
    return f"{aggregate_name}-{key or uuid4()}"


def named_stream_id(aggregate_name: str, name: str) -> str:
    """Stream id derived from a natural key (e.g. a template name), so lookups need no index."""
    return stream_id(aggregate_name, uuid5(NAMESPACE_URL, f"urn:lrm:{aggregate_name}:{name}"))


# An event's fields that are its envelope, not its data (``DomainEvent.payload`` leaves them out).
_ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "metadata", "originator_topic"})


class DomainEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """Base of every LRM event (a frozen dataclass)."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    metadata: dict[str, Any]

    @property
    def occurred_at(self) -> datetime:
        return self.timestamp

    @property
    def event_id(self) -> UUID:
        return event_id(self.originator_id, self.originator_version)

    @property
    def actor(self) -> str:
        return str(self.metadata.get("actor", ""))

    @property
    def event_name(self) -> str:
        """Past-tense fact name, e.g. ``CapacityReserved``."""
        return type(self).__name__

    def payload(self) -> dict[str, Any]:
        """The event's own data (what a timeline or a CloudEvent shows)."""
        return {k: v for k, v in vars(self).items() if k not in _ENVELOPE}


class AggregateCreated(CanInitAggregate[str], DomainEvent):
    originator_topic: str


TAggregate = TypeVar("TAggregate", bound="LrmAggregate")


class LrmAggregate(BaseAggregate[str]):
    """Base aggregate: str stream ids, versions from 0, explicit event classes."""

    INITIAL_VERSION = 0
    STREAM_PREFIX: ClassVar[str] = ""

    class Event(DomainEvent):
        pass

    class Created(Event, AggregateCreated):
        pass

    @classmethod
    def stream_prefix(cls) -> str:
        return cls.STREAM_PREFIX or cls.__name__

    @classmethod
    def _create_with(
        cls: type[TAggregate],
        event_class: type[Any],
        ctx: CommandContext,
        *,
        id: str | None = None,  # noqa: A002 - the library's keyword
        **fields: Any,
    ) -> TAggregate:
        return cls._create(
            event_class,
            id=id or stream_id(cls.stream_prefix()),
            timestamp=ctx.at,
            metadata=ctx.metadata(),
            **fields,
        )

    def _record(self, event_class: type[Any], ctx: CommandContext, **fields: Any) -> None:
        """Trigger ``event_class`` with the context's time and provenance."""
        self.trigger_event(event_class, timestamp=ctx.at, metadata=ctx.metadata(), **fields)
