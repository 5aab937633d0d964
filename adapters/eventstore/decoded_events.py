"""Recently decoded events, so that one stored event is decoded once, not once per reader.

Every process manager follows the same log (the scheduler's view, the autoscaler's, the
worker controller's replica, the instance controller, the simulator's KPI collector), and
commands replay the same short streams again and again: in a simulated day each stored
event was decoded ~9 times (JSON parse, object construction, the personal-data scan),
~9 % of the CPU. Decoded events are immutable values (frozen dataclasses; the aggregates
copy the dicts they take from them), so every reader can share one.

A hit needs the same stream, version, stored bytes and event class: a stream written
again (a test reusing a store) or a class swapped for a newer version (an upcaster)
decodes anew. Events that carried sealed personal data are never kept: their clear values
must not outlive the person's key (``PersonalDataMapper``); they are a few per instance.
Bounded: the oldest entries go first (readers follow the tail of the log).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

DEFAULT_SIZE = 20_000


class DecodedEvents:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, int], tuple[bytes, Any]] = OrderedDict()
        self._lock = threading.Lock()  # followers in threads share the store
        self.hits = 0
        self.misses = 0

    def get(self, stream_id: Any, version: int, state: bytes, cls: type) -> Any | None:
        """The event decoded earlier from exactly these bytes as ``cls``, or None."""
        found = self._entries.get((stream_id, version))
        if found is not None and type(found[1]) is cls and (found[0] is state or found[0] == state):
            self.hits += 1
            return found[1]
        self.misses += 1
        return None

    def put(self, stream_id: Any, version: int, state: bytes, event: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[(stream_id, version)] = (state, event)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
