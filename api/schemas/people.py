"""``/people``: what forgetting a person answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ForgottenOut(BaseModel):
    subject_id: str = Field(description="The pseudonym the person's events carry (links to no one now)")
    erased_as: str = Field(description="How the person reads from now on, everywhere")
    position: int = Field(description="Event position of the erasure record (use as min_position)")
    read_models: str = Field(description="'rebuilding': read models drop the identity once rebuilt")
