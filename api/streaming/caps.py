"""How many live streams may be open: per caller (429) and in all (503), both with Retry-After.

An open SSE stream holds a connection, a queue and a share of the hub's work for as long
as the client likes; without a cap 1 000 of them slowed every other request to seconds.
A caller (one token's subject) may hold ``per_caller`` streams, the process ``total``.
Counts are released when a stream ends, and a caller's entry disappears with its last
stream, so nothing accumulates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

RETRY_AFTER_SECONDS = 5


class TooManyStreams(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(eq=False)
class StreamLease:
    caps: StreamCaps
    caller: str
    released: bool = False

    def release(self) -> None:
        if not self.released:  # idempotent: both the stream's end and a failed start call it
            self.released = True
            self.caps._release(self.caller)


class StreamCaps:
    def __init__(self, *, total: int, per_caller: int) -> None:
        self.total = total
        self.per_caller = per_caller
        self._by_caller: Counter[str] = Counter()  # a missing caller reads as 0 (not inserted)
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def callers(self) -> int:
        return len(self._by_caller)

    def acquire(self, caller: str) -> StreamLease:
        """A lease on one stream, or ``TooManyStreams`` (429 for this caller, 503 for all)."""
        if self._by_caller[caller] >= self.per_caller:
            raise TooManyStreams(429, f"{caller} already has {self.per_caller} open streams; close one first")
        if self._open >= self.total:
            raise TooManyStreams(503, f"this server has its maximum of {self.total} open streams")
        self._by_caller[caller] += 1
        self._open += 1
        return StreamLease(self, caller)

    def _release(self, caller: str) -> None:
        self._open -= 1
        self._by_caller[caller] -= 1
        if self._by_caller[caller] <= 0:
            del self._by_caller[caller]
