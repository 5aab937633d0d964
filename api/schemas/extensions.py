"""Bodies of ``POST /instances/{id}/extend`` (strict: ``"30"`` is not a number of minutes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.checked import CheckedIn

from domain.instance import InstanceState
from processors.commands.extension import MAX_EXTENSION_MINUTES


class ExtendIn(CheckedIn):

    minutes: int = Field(ge=1, le=MAX_EXTENSION_MINUTES, strict=True, description="how much longer the lab runs")


class ExtendedOut(BaseModel):
    id: str
    state: InstanceState
    timeslot_end: datetime = Field(description="the lab's new end")
    hold_end: datetime | None = Field(description="its reservation on the worker now ends here (None: PENDING)")
    moved: list[str] = Field(description="future labs re-placed on other workers to make room")
    position: int
