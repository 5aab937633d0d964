from __future__ import annotations

from collections.abc import Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

START = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, at: datetime = START) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that must finish without ever suspending.

    The simulated cloud never sleeps or awaits I/O; if it did, this raises.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the coroutine suspended: the simulated cloud must not wait")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
