from datetime import datetime, timedelta, timezone

import pytest

from adapters.clock import VirtualClock
from domain.errors import ConcurrencyConflict
from processors.retry import retry_on_conflict


def test_retries_until_the_command_saves() -> None:
    calls = []

    def command() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrencyConflict("stale")
        return "saved"

    assert retry_on_conflict(command, sleep=lambda _: None) == "saved"
    assert len(calls) == 3


def test_gives_up_after_the_attempt_budget() -> None:
    def command() -> None:
        raise ConcurrencyConflict("always stale")

    with pytest.raises(ConcurrencyConflict):
        retry_on_conflict(command, attempts=3, sleep=lambda _: None)


def test_virtual_clock_moves_only_forward() -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    clock = VirtualClock(start)
    assert clock.advance(timedelta(minutes=5)) == start + timedelta(minutes=5)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        VirtualClock(datetime(2026, 1, 1))
