"""Delivery policy: what to do after one webhook attempt. Pure: no I/O, no clock, no randomness
of its own (the caller passes ``now`` and a ``random()`` source).

Classification (Standard Webhooks + CloudEvents web hook spec):

- 2xx: delivered.
- 410 Gone: the receiver is retired: stop and disable the subscription.
- 408, 425, 429, 5xx, and no response at all (timeout, connection refused, reset):
  transient, retry with backoff.
- an address the egress policy refuses (SSRF; e.g. the name now resolves to a private
  address): dead-letter, as a retry would be refused the same way.
- anything else (3xx, since redirects are never followed, and other 4xx such as 400,
  401, 403, 404, 413, 415): the receiver will refuse this message again, so dead-letter
  it at once; an operator fixes the receiver and redelivers.

Backoff is exponential with full jitter: before retry ``n`` (n = 1 after the first
failure) wait ``uniform(0, min(max_delay, initial * factor**(n-1)))``. A ``Retry-After``
on a retryable response replaces the backoff (bounded by ``max_retry_after``): the
receiver MUST NOT be called before it. The budget counts from the first attempt:
the last retry is scheduled no later than ``first_attempt_at + budget``; a failure at
or after the deadline, or a Retry-After that would pass it, dead-letters the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.ports.webhooks import AttemptResult, Outcome

RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RetrySchedule:
    initial: float = 10.0
    factor: float = 2.0
    max_delay: float = 3600.0
    budget: float = 24 * 3600.0
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.max_delay < self.initial or self.budget < 0:
            raise ValueError("invalid retry schedule")

    def ceiling(self, retry: int) -> float:
        """Upper bound of the jittered delay before retry number ``retry`` (1-based)."""
        exponent = min(retry - 1, 64)  # avoid float overflow on absurd counts
        return min(self.max_delay, self.initial * self.factor**exponent)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    next_attempt_at: datetime | None = None


def classify(result: AttemptResult) -> Outcome | None:
    """'delivered', 'disable', 'dead_letter', or None for "transient, may retry"."""
    status = result.status
    if result.blocked:
        return "dead_letter"  # the egress policy refused the address: not a network hiccup
    if status is None:
        return None
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "disable"
    if status >= 500 or status in RETRYABLE_4XX:
        return None
    return "dead_letter"


def describe(result: AttemptResult) -> str:
    if result.status is None:
        return result.error or "no response"
    return f"HTTP {result.status}" + (f": {result.error}" if result.error else "")


def decide(
    result: AttemptResult,
    *,
    attempt: int,
    first_attempt_at: datetime,
    now: datetime,
    schedule: RetrySchedule,
    random: Callable[[], float],
) -> Decision:
    """The decision after attempt number ``attempt`` (1-based) ended with ``result`` at ``now``."""
    outcome = classify(result)
    reason = describe(result)
    if outcome == "delivered":
        return Decision("delivered", reason)
    if outcome == "disable":
        return Decision("disable", f"{reason}: receiver gone")
    if outcome == "dead_letter":
        return Decision("dead_letter", f"{reason}: not retryable")

    deadline = first_attempt_at + timedelta(seconds=schedule.budget)
    if now >= deadline:
        return Decision("dead_letter", f"{reason}: retry budget of {schedule.budget:g} s spent")
    if result.retry_after is not None:
        wait = min(max(result.retry_after, 0.0), schedule.max_retry_after)
        at = now + timedelta(seconds=wait)
        if at > deadline:
            return Decision("dead_letter", f"{reason}: Retry-After {wait:g} s passes the budget")
        return Decision("retry", f"{reason}; Retry-After {wait:g} s", at)
    wait = random() * schedule.ceiling(attempt)
    return Decision("retry", reason, min(now + timedelta(seconds=wait), deadline))
