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
from datetime import datetime, timedelta

from domain.context import CommandContext
from domain.errors import NotFound
from domain.subscription import DEFAULT_ROTATION_OVERLAP, WebhookSubscription
from processors.commands import AggregateStore
from processors.ports.webhooks import EndpointGrant, EndpointValidator
from processors.retry import retry_on_conflict

SUBSCRIPTION_ID = re.compile(
    r"^WebhookSubscription-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


@dataclass(frozen=True)
class SubscriptionCreated:
    subscription_id: str
    position: int
    secret: str = field(repr=False)  # shown once, in the answer to the creating request


@dataclass(frozen=True)
class SecretRotated:
    subscription_id: str
    position: int
    secret: str = field(repr=False)  # shown once, in the answer to the rotating request
    previous_valid_until: datetime | None = None


class SubscriptionService:
    """``validator`` checks a URL before a subscription is created (egress policy and the
    receiver's handshake); without one (unit tests of the aggregate's commands) any URL
    the domain accepts is taken."""

    def __init__(
        self, store: AggregateStore, generate_secret: Callable[[], str], *, validator: EndpointValidator | None = None
    ) -> None:
        self.store = store
        self._generate_secret = generate_secret
        self._validator = validator

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
        auth_token: str = "",
    ) -> SubscriptionCreated:
        """Validated by the domain first (cheap, no I/O), then the URL is checked and the
        receiver asked (handshake); a refusal records nothing."""
        secret = self._generate_secret()
        fields = dict(url=url, secret=secret, owner=owner, types=tuple(types), subjects=tuple(subjects), mode=mode,
                      auth_token=auth_token)
        WebhookSubscription.create(ctx, **fields)  # the fields' own checks, before any request goes out
        grant = self._validator.validate(url, auth_token=auth_token) if self._validator else EndpointGrant()
        subscription = WebhookSubscription.create(ctx, allowed_rate=grant.allowed_rate, **fields)
        return SubscriptionCreated(subscription.id, self.store.save(subscription), secret)

    def rotate_secret(
        self, subscription_id: str, ctx: CommandContext, *, overlap: timedelta = DEFAULT_ROTATION_OVERLAP,
        owner: str | None = None,
    ) -> SecretRotated:
        """A new signing secret; the old one keeps signing for ``overlap`` (both in one header)."""
        secret = self._generate_secret()
        position = self._change(subscription_id, owner, lambda s: s.rotate_secret(ctx, secret, overlap))
        until = ctx.at + overlap if overlap > timedelta(0) else None
        return SecretRotated(subscription_id, position, secret, until)

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
