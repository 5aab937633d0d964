"""Bodies of ``/events``: the global event log, one page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    position: int = Field(description="global position (ordered by commit; gaps possible)")
    type: str
    stream_id: str
    version: int = Field(description="version of the event in its stream (from 0)")
    occurred_at: datetime
    actor: str
    causation_id: str
    correlation_id: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_after: int = Field(description="pass as ?after= for the next page (the last position read)")
    head: int = Field(description="the log's last position when the page was read")
