"""Optimistic concurrency in practice: re-read and retry a command when another writer won."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from domain.errors import ConcurrencyConflict

T = TypeVar("T")


def retry_on_conflict(
    command: Callable[[], T],
    *,
    attempts: int = 8,
    base_delay: float = 0.002,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``command`` (which must re-read what it changes) until it saves without a conflict.

    Jittered backoff keeps two racing writers from colliding in lock-step.
    """
    for attempt in range(1, attempts + 1):
        try:
            return command()
        except ConcurrencyConflict:
            if attempt == attempts:
                raise
            sleep(random.uniform(0, base_delay * 2**attempt))
    raise AssertionError("unreachable")
