"""Bodies of ``/classes`` (strict like the instance bodies: ``"30"`` is not a number)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.checked import CheckedIn, Instant
from domain.lab_class import MAX_SEATS
from domain.naming import MAX_NAME_LENGTH
from processors.commands.extension import MAX_EXTENSION_MINUTES

Owner = Field(min_length=1, max_length=200)


class ClassIn(CheckedIn):  # strict, closed, no control characters; RFC 3339 instants in range

    definition: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, strict=True)
    version: str | None = Field(None, min_length=1, max_length=50, strict=True)
    timeslot_start: Instant | None = Field(None, description="absent or past: as soon as possible")
    timeslot_end: Instant | None = None
    duration_minutes: int | None = Field(None, gt=0, le=100_000, strict=True)
    owners: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=MAX_SEATS, description=f"one seat each, up to {MAX_SEATS}")
    queue: bool = Field(False, strict=True, description="true: seats that do not fit wait PENDING for the "
                                                        "scheduler instead of refusing the class")


class ClassBookedOut(BaseModel):
    id: str
    seats: int
    position: int


class SeatOut(BaseModel):
    owner_id: str
    instance_id: str
    state: str | None = Field(description="from the instances read model (None until it has caught up)")
    worker_id: str | None
    timeslot_end: datetime | None


class ClassOut(BaseModel):
    id: str
    state: str
    definition_name: str
    definition_version: str
    timeslot_start: datetime | None
    timeslot_end: datetime
    queued: bool
    booked_by: str
    booked_at: datetime
    seats: list[SeatOut]
    by_state: dict[str, int]


class ClassMinutesIn(CheckedIn):

    minutes: int = Field(ge=1, le=MAX_EXTENSION_MINUTES, strict=True)


class ClassChangedOut(BaseModel):
    id: str
    instance_ids: list[str] = Field(description="the seats this command changed")
    position: int
