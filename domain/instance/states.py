"""The states of a lablet instance and the SPEC §3.3 transition table, as data."""

from __future__ import annotations

from enum import Enum


class InstanceState(str, Enum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    INSTANTIATING = "INSTANTIATING"
    READY = "READY"
    RUNNING = "RUNNING"
    COLLECTING = "COLLECTING"
    GRADING = "GRADING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ARCHIVED = "ARCHIVED"
    TERMINATED = "TERMINATED"

    def __str__(self) -> str:
        return self.value


S = InstanceState

# SPEC §3.3, row by row.
TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    S.PENDING: frozenset({S.SCHEDULED, S.TERMINATED}),
    S.SCHEDULED: frozenset({S.INSTANTIATING, S.PENDING, S.TERMINATED}),
    S.INSTANTIATING: frozenset({S.READY, S.INSTANTIATING, S.TERMINATED}),
    S.READY: frozenset({S.RUNNING, S.COLLECTING, S.STOPPING, S.TERMINATED}),
    S.RUNNING: frozenset({S.COLLECTING, S.STOPPING, S.TERMINATED}),
    S.COLLECTING: frozenset({S.GRADING, S.STOPPING, S.TERMINATED}),
    S.GRADING: frozenset({S.STOPPING, S.TERMINATED}),
    S.STOPPING: frozenset({S.STOPPED, S.TERMINATED}),
    S.STOPPED: frozenset({S.RUNNING, S.ARCHIVED, S.TERMINATED}),
    S.ARCHIVED: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
}

# Capacity and ports are held from SCHEDULED until ARCHIVED/TERMINATED (a STOPPED lab can restart).
CAPACITY_HOLDING_STATES = frozenset(
    {S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.GRADING, S.STOPPING, S.STOPPED}
)
FINISHED_STATES = frozenset({S.ARCHIVED, S.TERMINATED})

TERMINATION_REASONS = frozenset({
    "cancelled", "instantiation_failed", "max_retries_exceeded", "worker_lost", "drain_timeout",
    "admin", "no_show", "grading_timeout", "stuck_timeout", "completed",
})
MAX_INSTANTIATION_RETRIES = 3


def expected_sources(target: InstanceState) -> frozenset[InstanceState]:
    """States from which the table allows ``target`` (for docs and read models)."""
    return frozenset(s for s, nexts in TRANSITIONS.items() if target in nexts)
