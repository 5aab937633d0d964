"""In-memory DeliveryLog, SubscriptionCheckpoints and EventFeed (tests, simulation)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from processors.ports.webhooks import DeadLetter, DeliveryAttempt, OutboundEvent


class InMemoryDeliveryLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: list[DeliveryAttempt] = []
        self._dead: dict[tuple[str, str], DeadLetter] = {}

    def record_attempt(self, attempt: DeliveryAttempt) -> None:
        with self._lock:
            self._attempts.append(attempt)

    def prune_attempts(self, before: datetime) -> int:
        with self._lock:
            kept = [a for a in self._attempts if a.at >= before]
            removed = len(self._attempts) - len(kept)
            self._attempts = kept
        return removed

    def attempts(self, subscription_id: str, event_id: str | None = None, limit: int = 100) -> list[DeliveryAttempt]:
        with self._lock:
            found = [
                a
                for a in self._attempts
                if a.subscription_id == subscription_id and (event_id is None or a.event_id == event_id)
            ]
        return found[-limit:]

    def attempt_page(
        self, subscription_id: str, *, event_id: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[tuple[int, DeliveryAttempt]]:
        """Newest first, with each attempt's row id (1-based index), for keyset pagination."""
        with self._lock:
            rows = [
                (i, a)
                for i, a in enumerate(self._attempts, start=1)
                if a.subscription_id == subscription_id
                and (event_id is None or a.event_id == event_id)
                and (before is None or i < before)
            ]
        return list(reversed(rows))[:limit]

    def add_dead_letter(self, dead_letter: DeadLetter) -> None:
        with self._lock:
            self._dead[(dead_letter.subscription_id, dead_letter.event_id)] = dead_letter

    def dead_letters(self, subscription_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            found = [d for d in self._dead.values() if subscription_id in (None, d.subscription_id)]
        return sorted(found, key=lambda d: (d.subscription_id, d.position))[:limit]

    def dead_letter_page(self, subscription_id: str, *, limit: int = 50, after_position: int = -1) -> list[DeadLetter]:
        found = [d for d in self.dead_letters(subscription_id, limit=1 << 30) if d.position > after_position]
        return found[:limit]

    def redeliver(self, subscription_id: str, event_id: str) -> DeadLetter | None:
        with self._lock:
            found = self._dead.get((subscription_id, event_id))
            if found is None:
                return None
            found = self._dead[(subscription_id, event_id)] = replace(found, redelivering=True)
            return found

    def redeliveries(self, subscription_id: str) -> list[DeadLetter]:
        return [d for d in self.dead_letters(subscription_id, limit=1 << 30) if d.redelivering]

    def resolve_dead_letter(self, subscription_id: str, event_id: str) -> None:
        with self._lock:
            self._dead.pop((subscription_id, event_id), None)


class InMemoryCheckpoints:
    def __init__(self) -> None:
        self._positions: dict[str, int] = {}

    def get(self, subscription_id: str) -> int | None:
        return self._positions.get(subscription_id)

    def set(self, subscription_id: str, position: int) -> None:
        self._positions[subscription_id] = position

    def delete(self, subscription_id: str) -> None:
        self._positions.pop(subscription_id, None)


class InMemoryFeed:
    """A list of OutboundEvents with increasing positions; ``append`` adds more."""

    def __init__(self, events: Sequence[OutboundEvent] = ()) -> None:
        self._events: list[OutboundEvent] = []
        self._positions: list[int] = []
        for event in events:
            self.append(event)

    def append(self, event: OutboundEvent) -> None:
        if self._positions and event.position <= self._positions[-1]:
            raise ValueError("positions must increase")
        self._events.append(event)
        self._positions.append(event.position)

    async def read_after(self, position: int, limit: int) -> Sequence[OutboundEvent]:
        start = bisect.bisect_right(self._positions, position)
        return self._events[start : start + limit]
