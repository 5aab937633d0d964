"""When to try a failed cloud call again, per worker, in clock time (virtual-clock friendly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class _Attempts:
    count: int
    not_before: datetime
    last_error: str


class RetrySchedule:
    """Exponential backoff per key: ``base · 2^(n-1)``, at most ``maximum``.

    No jitter: each worker has its own schedule, so controllers do not retry in lock-step
    anyway, and a simulation stays reproducible.
    """

    def __init__(self, base: timedelta = timedelta(seconds=10), maximum: timedelta = timedelta(minutes=5)) -> None:
        self.base = base
        self.maximum = maximum
        self._by_key: dict[str, _Attempts] = {}

    def failed(self, key: str, now: datetime, error: str) -> datetime:
        """Record a failure; returns when the next attempt may happen."""
        previous = self._by_key.get(key)
        count = previous.count + 1 if previous else 1
        delay = min(self.base * (2 ** (count - 1)), self.maximum)
        self._by_key[key] = _Attempts(count, now + delay, error)
        return now + delay

    def succeeded(self, key: str) -> None:
        self._by_key.pop(key, None)

    def waiting(self, key: str, now: datetime) -> bool:
        attempts = self._by_key.get(key)
        return attempts is not None and now < attempts.not_before

    def attempts(self, key: str) -> int:
        attempts = self._by_key.get(key)
        return attempts.count if attempts else 0

    def next_at(self) -> datetime | None:
        return min((a.not_before for a in self._by_key.values()), default=None)
