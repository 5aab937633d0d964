"""Bodies of ``/quotas`` (strict numbers; null = no limit of that kind)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrent_labs: int | None = Field(None, ge=0, le=100_000, strict=True)
    max_lab_hours_per_day: float | None = Field(None, ge=0, le=24 * 100_000)
    members: list[str] | None = Field(None, max_length=10_000, description="groups only: the owners in it")


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
