"""Backoff and circuit breaker on their own, with a virtual clock and a seeded random source."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cml.resilience import CircuitBreaker, RetryPolicy
from processors.ports.cml import CircuitOpen
from tests.cml.conftest import FakeClock


@given(attempt=st.integers(1, 30), seed=st.integers(0, 2**32), retry_after=st.none() | st.floats(0, 100))
def test_backoff_stays_within_the_exponential_ceiling(attempt: int, seed: int, retry_after: float | None) -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=10.0)
    delay = policy.delay(attempt, random.Random(seed), retry_after)
    assert 0 <= delay <= 10.0
    if retry_after is None:
        assert delay <= min(10.0, 0.5 * 2 ** (attempt - 1))
    else:
        assert delay >= min(retry_after, 10.0)


def test_backoff_ceilings_double_per_attempt() -> None:
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert [policy.delay(n, Highest()) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_breaker_lifecycle() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("w", failure_threshold=2, cooldown=10.0, clock=clock)

    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_success()  # a success resets the count: failures must be consecutive
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as open_:
        breaker.before_call()
    assert open_.value.retry_after == 10.0

    clock.advance(10.0)
    breaker.before_call()  # the single half-open trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller waits for the trial's outcome
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()
