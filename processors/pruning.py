"""Bounded bookkeeping tables: rows older than the retention are deleted, now and then.

Each target is a ``prune(before) -> rows removed`` of a table that only records (webhook
delivery attempts) or only remembers for deduplication (the CloudEvents inbox). None of them
is what exactly-once rests on: webhook delivery resumes from its checkpoint and keeps its
dead letters; projections keep their checkpoints in their own transaction; the inbox's
window is the retention — a duplicate of an event older than that is taken as new, and the
transition it asks for is then either a no-op in the aggregate (``login`` of a RUNNING lab)
or refused as illegal (a second ``grading.session.completed``), so it cannot act twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from processors.ports.clock import Clock

log = logging.getLogger(__name__)


class Pruner:
    def __init__(
        self,
        targets: Mapping[str, Callable[[datetime], int]],
        retention: timedelta,
        clock: Clock,
        *,
        every: timedelta = timedelta(hours=1),
    ) -> None:
        self.targets = dict(targets)
        self.retention = retention
        self.clock = clock
        self.every = every
        self._last: datetime | None = None

    def tick(self, now: datetime | None = None) -> dict[str, int] | None:
        """Prune when ``every`` has passed since the last run; rows removed per table."""
        now = now or self.clock.now()
        if self._last is not None and now - self._last < self.every:
            return None
        self._last = now
        removed: dict[str, int] = {}
        for name, prune in sorted(self.targets.items()):
            try:
                removed[name] = prune(now - self.retention)
            except Exception:  # noqa: BLE001 - one table failing must not stop the others
                log.exception("pruning %s failed", name)
        if any(removed.values()):
            log.info("pruned %s (older than %s)", removed, (now - self.retention).isoformat())
        return removed
