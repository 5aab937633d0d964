"""Waiting for checkpoints to reach a position (read-your-writes)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from projections.readmodel import ReadModelStore

DEFAULT_POLL_INTERVAL = 0.002


def wait_for_checkpoint(
    store: ReadModelStore,
    names: Sequence[str],
    position: int,
    timeout: float,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> bool:
    """True once every named checkpoint is at ``position`` or later; False on timeout.

    For a runner in another process: polls the checkpoint table every few ms (the
    library's ``TrackingRecorder.wait`` starts at 100 ms, too slow for an API call).
    In-process, prefer ``ProjectionRunner.wait_for_position`` (woken on commit).
    """
    deadline = time.monotonic() + timeout
    while True:
        current = store.checkpoints()
        if all(n in current and current[n].position >= position for n in names):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(poll_interval, remaining))
