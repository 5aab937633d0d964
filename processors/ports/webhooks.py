"""Ports of the CloudEvent dispatcher: the event feed, the HTTP transport, the delivery log
and the per-subscription checkpoints.

Positions are global event-store positions (notification ids, starting at 1). A
checkpoint ``p`` means "every event with position <= p is finished for this
subscription" (delivered, filtered out or dead-lettered); 0 means nothing is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

DeliveryMode = Literal["structured", "binary"]
Outcome = Literal["delivered", "retry", "dead_letter", "disable"]


@dataclass(frozen=True)
class EncodedMessage:
    """An HTTP message ready to send: content headers (content-type, ce-*) and body bytes."""

    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class OutboundEvent:
    """One event of the feed, as the dispatcher sees it.

    ``payload`` is opaque to the dispatcher (the adapter puts the CloudEvent there);
    only the encoder looks inside.
    """

    position: int
    id: str
    type: str
    subject: str
    payload: Any = None


class EventFeed(Protocol):
    """The global log, read forward: events with position > ``position``, oldest first."""

    async def read_after(self, position: int, limit: int) -> Sequence[OutboundEvent]: ...


Encoder = Callable[[OutboundEvent, DeliveryMode], EncodedMessage]


@dataclass(frozen=True)
class WebhookRequest:
    """One signed POST to make. The transport adds the ``webhook-*`` headers per attempt."""

    url: str
    message_id: str
    message: EncodedMessage
    secret: str = field(repr=False)
    # During a secret rotation: the previous secret, which signs too (one more entry).
    extra_secrets: tuple[str, ...] = field(default=(), repr=False)
    # The receiver's bearer token (``Authorization: Bearer``), when it asked for one.
    auth_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt produced. ``status`` is None when no response came back."""

    status: int | None
    latency: float
    error: str | None = None
    retry_after: float | None = None  # seconds from the response, if it asked
    # The egress policy refused the address (SSRF): the same URL would be refused again.
    blocked: bool = False


class WebhookTransport(Protocol):
    async def deliver(self, request: WebhookRequest, *, timeout: float) -> AttemptResult: ...


@dataclass(frozen=True)
class DeliveryAttempt:
    """The record of one attempt, written whatever its outcome."""

    subscription_id: str
    event_id: str
    position: int
    subject: str
    attempt: int
    at: datetime
    status: int | None
    latency: float
    error: str | None
    outcome: Outcome
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    """An event given up on for one subscription, with the exact message to redeliver."""

    subscription_id: str
    event_id: str
    position: int
    subject: str
    type: str
    reason: str
    attempts: int
    at: datetime
    message: EncodedMessage
    redelivering: bool = False


class DeliveryLog(Protocol):
    def record_attempt(self, attempt: DeliveryAttempt) -> None: ...

    def attempts(
        self, subscription_id: str, event_id: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]: ...

    def add_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Insert, or replace the record of the same (subscription, event)."""
        ...

    def dead_letters(self, subscription_id: str | None = None, limit: int = 100) -> list[DeadLetter]: ...

    def redeliver(self, subscription_id: str, event_id: str) -> DeadLetter | None:
        """Mark a dead letter as being redelivered (survives restarts); None if unknown."""
        ...

    def redeliveries(self, subscription_id: str) -> list[DeadLetter]:
        """Dead letters marked for redelivery and not resolved yet."""
        ...

    def resolve_dead_letter(self, subscription_id: str, event_id: str) -> None:
        """The redelivery succeeded: forget the dead letter."""
        ...


class SubscriptionCheckpoints(Protocol):
    def get(self, subscription_id: str) -> int | None:
        """The checkpoint, or None if the subscription has none yet."""
        ...

    def set(self, subscription_id: str, position: int) -> None: ...

    def delete(self, subscription_id: str) -> None: ...


Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class EndpointGrant:
    """What a receiver granted when its URL was checked (the web hook handshake)."""

    allowed_rate: int | None = None  # requests per minute; None: no limit stated


class EndpointValidator(Protocol):
    """Checks a subscription URL before the subscription is activated: the egress policy
    (HTTPS, no internal addresses) and the receiver's consent (abuse-protection handshake)."""

    def validate(self, url: str, *, auth_token: str = "") -> EndpointGrant:
        """The grant, or ``domain.errors.InvalidInput("url", reason)``."""
        ...
