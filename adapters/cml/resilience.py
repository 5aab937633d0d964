"""Retry with exponential backoff and jitter, and a circuit breaker per worker.

Kept free of HTTP so both policies can be tested on their own with an injected clock and
random source.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from processors.ports.cml import CircuitOpen


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): full jitter over an exponential cap.

        A server's ``Retry-After`` wins when it asks for longer (bounded by ``max_delay``).
        """
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        jittered = rng.uniform(0, ceiling)
        if retry_after is not None:
            return min(self.max_delay, max(jittered, retry_after))
        return jittered


@dataclass
class CircuitBreaker:
    """Closed → (``failure_threshold`` consecutive failures) → open → (``cooldown`` s) → half-open.

    Half-open lets one trial call through: success closes the circuit, failure reopens it for
    another cool-down. While open, ``before_call`` raises ``CircuitOpen`` without touching the
    network, so a dead worker costs its callers nothing.
    """

    worker_id: str
    failure_threshold: int = 5
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = field(default=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self.trial_in_flight:
            self.trial_in_flight = True
            return
        assert self.opened_at is not None
        remaining = max(0.0, self.opened_at + self.cooldown - self.clock())
        raise CircuitOpen(self.worker_id, remaining)

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self.trial_in_flight = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self.trial_in_flight or self.consecutive_failures >= self.failure_threshold:
            self.opened_at = self.clock()
        self.trial_in_flight = False
