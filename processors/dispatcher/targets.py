"""What the dispatcher needs to know about one subscription (a snapshot of the aggregate)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.subscription import WebhookSubscription, subject_matches, type_matches
from processors.ports.webhooks import DeliveryMode, OutboundEvent


# CloudEvent types of WebhookSubscription events (``ccm.subscription.*``).
SUBSCRIPTION_TYPES = "ccm.subscription."


@dataclass(frozen=True)
class SubscriptionTarget:
    id: str
    url: str
    secret: str = field(repr=False)
    mode: DeliveryMode = "structured"
    types: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    auth_token: str = field(default="", repr=False)
    # The secret a rotation replaced, signing until ``previous_secret_until``.
    previous_secret: str = field(default="", repr=False)
    previous_secret_until: datetime | None = None
    allowed_rate: int | None = None  # per minute, as the receiver granted in the handshake

    def extra_secrets(self, now: datetime) -> tuple[str, ...]:
        """The previous secret while its overlap lasts (a second signature entry)."""
        if self.previous_secret and self.previous_secret_until is not None and now < self.previous_secret_until:
            return (self.previous_secret,)
        return ()

    def matches(self, event: OutboundEvent) -> bool:
        if event.type.startswith(SUBSCRIPTION_TYPES) and event.subject != self.id:
            # Another receiver's subscription (its URL, owner, filters) is not ours to see.
            return False
        return type_matches(self.types, event.type) and subject_matches(self.subjects, event.subject)

    @classmethod
    def from_subscription(cls, subscription: WebhookSubscription) -> SubscriptionTarget | None:
        """The target to deliver to, or None when the subscription is disabled or deleted."""
        if not subscription.enabled or subscription.deleted:
            return None
        mode: DeliveryMode = "binary" if subscription.mode == "binary" else "structured"
        return cls(
            id=subscription.id,
            url=subscription.url,
            secret=subscription.secret,
            mode=mode,
            types=tuple(subscription.types),
            subjects=tuple(subscription.subjects),
            auth_token=getattr(subscription, "auth_token", ""),
            previous_secret=getattr(subscription, "previous_secret", ""),
            previous_secret_until=getattr(subscription, "previous_secret_until", None),
            allowed_rate=getattr(subscription, "allowed_rate", None),
        )
