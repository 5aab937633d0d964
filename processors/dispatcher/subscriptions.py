"""Webhook subscriptions as graders and admins manage them (SPEC §7): create, delete, replay,
disable, enable.

Every change is an event on the ``WebhookSubscription`` stream; the dispatcher follows
those events (``SubscriptionSync``), so a replay or a deletion takes effect in every process
that runs a dispatcher, and survives restarts.

Ownership: a grader sees and manages only the subscriptions it created (``owner`` = its
actor); an admin passes ``owner=None`` and sees all. A subscription of someone else answers
``NotFound``, so ids do not leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.context import CommandContext
from domain.errors import NotFound
from domain.subscription import WebhookSubscription
from processors.commands import AggregateStore
from processors.retry import retry_on_conflict

SUBSCRIPTION_ID = re.compile(
    r"^WebhookSubscription-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


@dataclass(frozen=True)
class SubscriptionCreated:
    subscription_id: str
    position: int
    secret: str = field(repr=False)  # shown once, in the answer to the creating request


class SubscriptionService:
    def __init__(self, store: AggregateStore, generate_secret: Callable[[], str]) -> None:
        self.store = store
        self._generate_secret = generate_secret

    def get(self, subscription_id: str, *, owner: str | None = None) -> WebhookSubscription:
        """The subscription (deleted ones too); ``NotFound`` if unknown or owned by someone else."""
        missing = NotFound(f"subscription {subscription_id!r} not found")
        if not isinstance(subscription_id, str) or not SUBSCRIPTION_ID.match(subscription_id):
            raise missing
        try:
            subscription = self.store.get(subscription_id)
        except NotFound:
            raise missing from None
        if not isinstance(subscription, WebhookSubscription):
            raise missing
        if owner is not None and subscription.owner != owner:
            raise missing
        return subscription

    def create(
        self,
        ctx: CommandContext,
        *,
        owner: str,
        url: str,
        types: tuple[str, ...] | list[str] = (),
        subjects: tuple[str, ...] | list[str] = (),
        mode: str = "structured",
    ) -> SubscriptionCreated:
        secret = self._generate_secret()
        subscription = WebhookSubscription.create(
            ctx, url=url, secret=secret, owner=owner, types=tuple(types), subjects=tuple(subjects), mode=mode
        )
        return SubscriptionCreated(subscription.id, self.store.save(subscription), secret)

    def delete(self, subscription_id: str, ctx: CommandContext, *, owner: str | None = None) -> int:
        return self._change(subscription_id, owner, lambda s: s.delete(ctx))

    def replay(self, subscription_id: str, from_position: int, ctx: CommandContext, *, owner: str | None = None) -> int:
        """Re-send every matching event with a position greater than ``from_position``."""
        return self._change(subscription_id, owner, lambda s: s.request_replay(ctx, from_position))

    def disable(self, subscription_id: str, reason: str, ctx: CommandContext, *, owner: str | None = None) -> int:
        return self._change(subscription_id, owner, lambda s: s.disable(ctx, reason))

    def enable(self, subscription_id: str, ctx: CommandContext, *, owner: str | None = None) -> int:
        return self._change(subscription_id, owner, lambda s: s.enable(ctx))

    def _change(
        self, subscription_id: str, owner: str | None, command: Callable[[WebhookSubscription], None]
    ) -> int:
        def attempt() -> int:
            subscription = self.get(subscription_id, owner=owner)
            command(subscription)
            return self.store.save(subscription)

        return retry_on_conflict(attempt)
