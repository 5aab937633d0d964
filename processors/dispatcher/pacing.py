"""Pacing a subscription's attempts by the rate its receiver granted in the handshake
(``WebHook-Allowed-Rate``, requests per minute; CloudEvents web hook spec §4.2: a sender
going over it gets 429s). Pure: the caller passes the time."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)


class RateGate:
    """At most ``per_minute`` attempts started in any sliding minute (None: no limit)."""

    def __init__(self, per_minute: int | None) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self._started: deque[datetime] = deque()

    def wait(self, now: datetime) -> float:
        """Seconds until another attempt may start (0: now)."""
        if self.per_minute is None:
            return 0.0
        while self._started and self._started[0] <= now - WINDOW:
            self._started.popleft()
        if len(self._started) < self.per_minute:
            return 0.0
        return max((self._started[0] + WINDOW - now).total_seconds(), 0.0)

    def started(self, now: datetime) -> None:
        if self.per_minute is not None:
            self._started.append(now)
