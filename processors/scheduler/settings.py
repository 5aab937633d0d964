"""Knobs of the scheduler process manager (the composition root fills them from ``LRM_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from processors.scheduler.records import DEFAULT_DETAIL_LIMIT


@dataclass(frozen=True)
class SchedulerSettings:
    #: instantiation starts at ``timeslot_start - instantiation_lead`` (LRM_INSTANTIATION_LEAD_MINUTES)
    instantiation_lead: timedelta = timedelta(minutes=15)
    #: a hold ends at ``timeslot_end + teardown_margin`` (LRM_TEARDOWN_MARGIN_MINUTES)
    teardown_margin: timedelta = timedelta(minutes=30)
    #: workers explained in full in a recorded decision (the rest is counted)
    detail_limit: int = DEFAULT_DETAIL_LIMIT
    #: the safety re-scan: every queued instance is retried and every hold re-checked
    rescan_interval: timedelta = timedelta(seconds=60)
    #: a reservation without a scheduled instance is someone's placement in flight for
    #: this long; after it, the scheduler completes (or undoes) it
    recovery_grace: timedelta = timedelta(seconds=10)
    #: placements saved in one atomic append (1: a save per reservation and per schedule)
    batch_size: int = 64
    #: above this many workers, decide through the exact shortlist (see shortlist.py)
    prune_above: int = 64
    #: optimistic-concurrency retries of one placement before it waits for the next pass
    max_attempts: int = 32
    #: longest real-time sleep of the background loop between passes (seconds)
    idle_wait: float = 0.5
    actor: str = "system:scheduler"
