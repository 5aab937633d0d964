"""When the controller looks at each live instance next, with the due ones found without a scan.

A pass used to test every live instance (``at is None or at <= now``): with thousands of
live labs and a pass per clock step, that scan was the controller's largest cost. This
dict keeps, besides ``id -> at``, a heap of the times and the set of ids already due, so a
pass costs what is due, not what is live.
"""

from __future__ import annotations

import heapq
from datetime import datetime


class DueTimes(dict[str, datetime | None]):
    """``instance id -> when to look next`` (None: at once)."""

    def __init__(self) -> None:
        super().__init__()
        self._heap: list[tuple[datetime, str]] = []
        self._due: set[str] = set()  # ids whose time has been reached (or is None)

    def __setitem__(self, key: str, at: datetime | None) -> None:
        super().__setitem__(key, at)
        if at is None:
            self._due.add(key)
        else:
            self._due.discard(key)
            heapq.heappush(self._heap, (at, key))  # an older entry for the key is skipped when popped

    def setdefault(self, key: str, default: datetime | None = None) -> datetime | None:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: datetime | None) -> datetime | None:  # type: ignore[override]
        self._due.discard(key)
        return super().pop(key, *default)

    def __delitem__(self, key: str) -> None:
        self._due.discard(key)
        super().__delitem__(key)

    def due(self, now: datetime) -> set[str]:
        """The ids whose look is due at ``now`` (``at`` None or not after ``now``)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if key in self and self[key] == at:
                self._due.add(key)
        return {key for key in self._due if (at := self[key]) is None or at <= now}

    def earliest(self) -> datetime | None:
        """The earliest time set (None values aside), as ``min`` over the values would give."""
        heap = self._heap
        while heap and not (heap[0][1] in self and self[heap[0][1]] == heap[0][0]):
            heapq.heappop(heap)  # stale: the key was set again or removed
        times = [at for key in self._due if (at := self[key]) is not None]
        if heap:
            times.append(heap[0][0])
        return min(times, default=None)
