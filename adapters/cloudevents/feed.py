"""EventFeed over the event store: (position, domain event) pairs -> OutboundEvents."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from adapters.cloudevents.mapping import to_outbound
from domain.base import DomainEvent
from processors.ports.webhooks import OutboundEvent

ReadAfter = Callable[[int, int], Sequence[tuple[int, DomainEvent]] | Awaitable[Sequence[tuple[int, DomainEvent]]]]


class DomainEventFeed:
    """Wraps any ``read_after(position, limit) -> [(position, event), ...]`` (sync or async).

    A sync reader runs on the dispatcher's own loop thread, so it never blocks commands.
    """

    def __init__(self, read_after: ReadAfter, *, source: str) -> None:
        self._read_after = read_after
        self._source = source

    async def read_after(self, position: int, limit: int) -> Sequence[OutboundEvent]:
        rows = self._read_after(position, limit)
        if inspect.isawaitable(rows):
            rows = await rows
        return [to_outbound(event, pos, source=self._source) for pos, event in rows]
