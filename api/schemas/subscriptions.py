"""Bodies of ``/subscriptions`` (webhook subscriptions) and ``/cloudevents`` (incoming events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.checked import CheckedIn
from domain.naming import MAX_NAME_LENGTH
from domain.subscription import MAX_AUTH_TOKEN, MAX_FILTERS, MAX_ROTATION_OVERLAP

MAX_POSITION = 2**63 - 1  # positions are BIGINT in every store
FilterText = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]


Strict = CheckedIn  # strict, closed, no control characters (api/schemas/checked.py)


class SubscriptionIn(Strict):
    url: str = Field(max_length=2000, description="absolute https:// URL of the receiver (http:// only in "
                                                  "development mode); it must answer the OPTIONS handshake")
    types: list[FilterText] = Field(
        default_factory=list, max_length=MAX_FILTERS,
        description="exact CloudEvent types or prefixes like 'ccm.lablet.instance.*'; empty = all",
    )
    subjects: list[FilterText] = Field(
        default_factory=list, max_length=MAX_FILTERS,
        description="exact subjects (stream ids) or prefixes like 'Worker-*'; empty = all",
    )
    mode: Literal["structured", "binary"] = Field(
        "structured", description="structured (the signature covers every attribute) or binary (ce-* headers)"
    )
    auth_token: str = Field(
        "", max_length=MAX_AUTH_TOKEN,
        description="a bearer token the receiver asked for: sent as 'Authorization: Bearer' on the handshake and "
                    "every delivery; never shown again",
    )


class RotateSecretIn(Strict):
    overlap_seconds: int = Field(
        86400, ge=0, le=int(MAX_ROTATION_OVERLAP.total_seconds()),
        description="how long the previous secret keeps signing too (both entries in webhook-signature)",
    )


class SecretRotatedOut(BaseModel):
    id: str
    secret: str = Field(description="the new whsec_... secret: shown only in this answer")
    previous_valid_until: datetime | None = Field(description="until then deliveries carry both signatures")
    position: int


class ReplayIn(Strict):
    from_position: int = Field(ge=0, le=MAX_POSITION,
                               description="re-send every matching event with a greater position; 0 = all")


class ReasonIn(Strict):
    reason: str = Field("disabled by its owner", max_length=500)


class SubscriptionOut(BaseModel):
    id: str
    url: str
    types: list[str]
    subjects: list[str]
    mode: str
    owner: str
    enabled: bool
    disabled_reason: str | None = None
    deleted: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_replay_from: int | None = None
    allowed_rate: int | None = Field(None, description="requests per minute the receiver granted (null: no limit)")
    rotated_at: datetime | None = Field(None, description="when the signing key was last rotated")
    overlap_until: datetime | None = Field(
        None, description="after a rotation: deliveries carry the previous key's signature too until then")
    position: int | None = None


class SubscriptionCreatedOut(BaseModel):
    id: str
    url: str
    types: list[str]
    subjects: list[str]
    mode: str
    owner: str
    secret: str = Field(description="whsec_...: shown only in this answer; verify webhook-signature with it")
    position: int


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    event_id: str
    position: int
    subject: str
    attempt: int
    at: datetime
    status: int | None = Field(description="HTTP status; null when no response came (timeout, refused)")
    latency_ms: float
    error: str | None
    outcome: str = Field(description="delivered | retry | dead_letter | disable")
    next_attempt_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeadLetterOut(BaseModel):
    event_id: str
    position: int
    subject: str
    type: str
    reason: str
    attempts: int
    at: datetime
    redelivering: bool


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class RedeliveryOut(BaseModel):
    event_id: str
    redelivering: bool


class IngestedOut(BaseModel):
    id: str
    source: str
    type: str | None = None
    result: str = Field(description="accepted | duplicate | ignored | rejected (batch only)")
    instance_id: str | None = None
    position: int | None = None
    detail: str = ""
    problem: dict[str, Any] | None = Field(None, description="batch mode: why this event was rejected")


class IngestOut(BaseModel):
    mode: str = Field(description="binary | structured | batch")
    results: list[IngestedOut]
    position: int = Field(description="global position after the events were applied (use as min_position)")
