"""The pure delivery policy: classification, backoff bounds, Retry-After, budget."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.dispatcher.policy import RetrySchedule, classify, decide
from processors.ports.webhooks import AttemptResult

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
S = RetrySchedule(initial=10, factor=2, max_delay=3600, budget=86400, max_retry_after=3600)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"), (201, "delivered"), (202, "delivered"), (204, "delivered"),
        (410, "disable"),
        (429, None), (408, None), (425, None), (500, None), (502, None), (503, None), (504, None),
        (None, None),
        (301, "dead_letter"), (302, "dead_letter"), (307, "dead_letter"),
        (400, "dead_letter"), (401, "dead_letter"), (403, "dead_letter"), (404, "dead_letter"),
        (413, "dead_letter"), (415, "dead_letter"),
    ],
)
def test_classification(status, outcome):
    assert classify(AttemptResult(status, 0.1)) == outcome


def after(result, attempt=1, elapsed=0.0, rnd=0.5, schedule=S):
    return decide(
        result,
        attempt=attempt,
        first_attempt_at=T0,
        now=T0 + timedelta(seconds=elapsed),
        schedule=schedule,
        random=lambda: rnd,
    )


def test_full_jitter_doubles_up_to_the_cap():
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (50, 3600)]:
        d = after(AttemptResult(500, 0.1), attempt=attempt, rnd=1.0)
        assert d.outcome == "retry"
        assert d.next_attempt_at == T0 + timedelta(seconds=ceiling)
        assert after(AttemptResult(500, 0.1), attempt=attempt, rnd=0.0).next_attempt_at == T0


def test_retry_after_overrides_backoff_and_is_bounded():
    d = after(AttemptResult(429, 0.1, retry_after=120), rnd=0.0)
    assert d.next_attempt_at == T0 + timedelta(seconds=120)
    d = after(AttemptResult(503, 0.1, retry_after=99999))
    assert d.next_attempt_at == T0 + timedelta(seconds=3600)


def test_retry_after_past_the_budget_dead_letters():
    d = after(AttemptResult(429, 0.1, retry_after=3000), elapsed=86400 - 100)
    assert d.outcome == "dead_letter" and "budget" in d.reason


def test_budget():
    assert after(AttemptResult(500, 0.1), elapsed=86400).outcome == "dead_letter"
    last = after(AttemptResult(500, 0.1), attempt=30, elapsed=86400 - 5, rnd=1.0)
    assert last.outcome == "retry" and last.next_attempt_at == T0 + timedelta(seconds=86400)


def test_410_and_4xx_are_final():
    assert after(AttemptResult(410, 0.1)).outcome == "disable"
    d = after(AttemptResult(400, 0.1, error="bad field"))
    assert d.outcome == "dead_letter" and "400" in d.reason and "bad field" in d.reason


@given(
    attempt=st.integers(1, 200),
    elapsed=st.floats(0, 200_000),
    rnd=st.floats(0, 1, exclude_max=True),
    status=st.sampled_from([None, 429, 500, 503]),
    retry_after=st.one_of(st.none(), st.floats(0, 10_000)),
)
def test_retries_never_before_now_nor_after_the_deadline(attempt, elapsed, rnd, status, retry_after):
    now = T0 + timedelta(seconds=elapsed)
    d = after(AttemptResult(status, 0.1, retry_after=retry_after), attempt, elapsed, rnd)
    if d.outcome == "retry":
        assert now <= d.next_attempt_at <= T0 + timedelta(seconds=S.budget)
        if retry_after is not None:
            assert d.next_attempt_at == now + timedelta(seconds=min(retry_after, S.max_retry_after))
    else:
        assert d.outcome == "dead_letter"


def test_default_schedule_budget_is_about_a_day():
    d = RetrySchedule()
    assert d.budget == 24 * 3600 and d.initial == 10 and d.max_delay == 3600
    with pytest.raises(ValueError):
        RetrySchedule(initial=0)
