"""Bodies of ``/quotas`` (strict numbers; null = no limit of that kind)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.schemas.checked import CheckedIn


class QuotaIn(CheckedIn):  # strict, closed, no control characters
    max_concurrent_labs: int | None = Field(None, ge=0, le=100_000, strict=True)
    max_lab_hours_per_day: float | None = Field(None, ge=0, le=24 * 100_000)
    members: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(None, max_length=10_000, description="groups only: the owners in it")


class QuotaSetOut(BaseModel):
    quota: str
    changed: bool
    position: int


class QuotaStatusOut(BaseModel):
    quota: str
    limits: dict[str, Any]
    members: list[str] | None
    concurrent_labs_now: int
    lab_hours_today: float
    remaining: dict[str, Any] = Field(description="what may still be booked now / today")


class QuotaListOut(BaseModel):
    items: list[QuotaStatusOut]
