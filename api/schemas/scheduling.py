"""Bodies of ``/scheduling``: placement decisions and the queue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class DecisionOut(BaseModel):
    decision_id: str
    instance_id: str
    owner_id: str
    event: str  # PlacementDecided | PlacementFailed
    outcome: str  # placed | unplaceable
    worker_id: str | None
    summary: str | None  # why nothing fitted (unplaceable)
    occurred_at: str
    actor: str
    position: int | None
    version: int
    #: the recorded decision: candidates, rejections by worker and by filter, scores,
    #: ranking, chosen worker, policy and version, what was needed, and the inputs to replay it
    decision: dict[str, Any]


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    next_cursor: str | None


class QueuedOut(BaseModel):
    instance_id: str
    state: str
    owner_id: str
    definition_name: str
    definition_version: str
    timeslot_start: str | None
    timeslot_end: str | None
    requested_at: str
    queued_at: str
    start: str
    requirements: dict[str, Any]
    last_failure: str | None  # why it is still pending (None: not tried yet)
    last_decision_position: int | None
    position: int | None


class QueuePage(BaseModel):
    items: list[QueuedOut]
    next_cursor: str | None
