"""Recently decoded events, so that one stored event is decoded once, not once per reader.

Every process manager follows the same log (the scheduler's view, the autoscaler's, the
worker controller's replica, the instance controller, the simulator's KPI collector), and
commands replay the same short streams again and again: in a simulated day each stored
event was decoded ~9 times (JSON parse, object construction, the personal-data scan),
~9 % of the CPU. Decoded events are immutable values (frozen dataclasses; the aggregates
copy the dicts they take from them), so every reader can share one.

A hit needs the same stream, version, stored bytes and event class: a stream written
again (a test reusing a store) or a class swapped for a newer version (an upcaster)
decodes anew. Events that carry sealed personal data are kept **sealed**: their clear
values must not outlive the person's key, so each read gets its own copy, opened then
(``PersonalDataMapper``: after an erasure it reads ``erased-…`` at once). Bounded: the
oldest entries go first (readers follow the tail of the log).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, NamedTuple

DEFAULT_SIZE = 20_000


class Decoded(NamedTuple):
    state: bytes  # the stored bytes it was decoded from
    cls: type  # the event's class
    event: Any | None  # the event, shared by every reader (None: it has personal data)
    sealed: dict[str, Any] | None  # else its attributes with personal values still sealed


class DecodedEvents:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, int], Decoded] = OrderedDict()
        self._lock = threading.Lock()  # followers in threads share the store
        self.hits = 0
        self.misses = 0

    def get(self, stream_id: Any, version: int, state: bytes, cls: type) -> Decoded | None:
        """What was decoded earlier from exactly these bytes as ``cls``, or None."""
        found = self._entries.get((stream_id, version))
        if found is not None and found.cls is cls and (found.state is state or found.state == state):
            self.hits += 1
            return found
        self.misses += 1
        return None

    def put(self, stream_id: Any, version: int, state: bytes, cls: type, event: Any | None,
            sealed: dict[str, Any] | None = None) -> None:
        """Keep ``event`` (no personal data) or its ``sealed`` attributes (never both)."""
        if self.size <= 0:
            return
        with self._lock:
            self._entries[(stream_id, version)] = Decoded(state, cls, None if sealed is not None else event, sealed)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
