"""Deduplication of incoming CloudEvents by ``(source, id)``.

Two layers, because senders retry (at-least-once) and a duplicate must not act twice:

1. ``inbound_command_id(source, id)``: a deterministic causation id for the command an
   incoming event triggers. Commands are idempotent on it, so even a duplicate that
   slips past the window below (restart, second API replica) records nothing new.
2. ``SeenEvents``: a bounded in-memory window (LRU with a time-to-live) to answer
   "already accepted" cheaply and report duplicates in the response.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from uuid import NAMESPACE_URL, UUID, uuid5

INBOUND_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lablet-resource-manager:inbound-cloudevent")


def dedup_key(source: str, event_id: str) -> str:
    # The length prefix makes the key unambiguous whatever characters source holds.
    return f"{len(source)}:{source}|{event_id}"


def inbound_command_id(source: str, event_id: str) -> UUID:
    return uuid5(INBOUND_NAMESPACE, dedup_key(source, event_id))


class SeenEvents:
    """Remembers up to ``capacity`` keys for ``ttl``; thread-safe."""

    def __init__(
        self,
        capacity: int = 100_000,
        ttl: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, source: str, event_id: str) -> bool:
        """True if ``(source, id)`` was already seen within the window; records it either way."""
        key, now = dedup_key(source, event_id), self._clock()
        with self._lock:
            self._expire(now)
            seen = key in self._seen
            self._seen[key] = now
            self._seen.move_to_end(key)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return seen

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: datetime) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at < self._ttl:
                return
            del self._seen[key]
