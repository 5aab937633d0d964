"""What the dispatcher needs to know about one subscription (a snapshot of the aggregate)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        )
