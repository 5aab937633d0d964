"""WebhookSubscription: who receives which CloudEvents, where, and signed with which secret.

Decision on the secret: it is recorded in ``SubscriptionCreated`` because the event
store is the only source of truth (no separate secret store to back up, restore or
keep consistent) and the dispatcher needs the key to sign. It is protected like the
event store itself and kept out of everything derived from events:
``payload()`` (hence CloudEvents, timelines, the global feed) and ``repr()`` (hence
logs) never contain it. The API shows it once, in the response that created it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from domain.base import LrmAggregate
from domain.context import CommandContext
from domain.errors import IllegalTransition, InvalidInput

DeliveryMode = Literal["structured", "binary"]
DELIVERY_MODES: tuple[str, ...] = ("structured", "binary")

SECRET_PREFIX = "whsec_"
# Standard Webhooks: symmetric keys of 24..64 bytes (192..512 bits).
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64

# A bearer token the receiver asked for (RFC 6750 token68 characters).
_AUTH_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MAX_AUTH_TOKEN = 1024
# How long the previous signing secret keeps signing after a rotation.
DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)
MAX_ROTATION_OVERLAP = timedelta(days=7)

_TYPE_FILTER = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")
MAX_FILTERS = 50


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret; raises InvalidInput if malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidInput("secret", f"must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Like the reference library, accept unpadded base64.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("secret", "is not valid base64 after the prefix") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidInput("secret", f"key must be {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes")
    return key


def type_matches(filters: tuple[str, ...], event_type: str) -> bool:
    """Empty filters match every type; ``a.b.*`` matches ``a.b.x`` and ``a.b.x.y``; ``*`` all."""
    if not filters:
        return True
    for f in filters:
        if f == "*" or f == event_type:
            return True
        if f.endswith(".*") and event_type.startswith(f[:-1]):
            return True
    return False


def subject_matches(subjects: tuple[str, ...], subject: str) -> bool:
    """Empty means every subject; otherwise exact ids or a ``Prefix*`` (e.g. ``Worker-*``)."""
    if not subjects:
        return True
    return any(subject == s or (s.endswith("*") and subject.startswith(s[:-1])) for s in subjects)


def _validate_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", "must be an absolute http(s) URL")
    if parts.fragment:
        raise InvalidInput("url", "must not have a fragment")
    return url


def _validate_auth_token(token: str) -> str:
    if token and (len(token) > MAX_AUTH_TOKEN or not _AUTH_TOKEN.match(token)):
        raise InvalidInput(
            "auth_token", f"must be a bearer token: 1..{MAX_AUTH_TOKEN} characters of A-Z a-z 0-9 -._~+/ (then =)"
        )
    return token


def _validate_types(types: tuple[str, ...]) -> tuple[str, ...]:
    if len(types) > MAX_FILTERS:
        raise InvalidInput("types", f"at most {MAX_FILTERS} filters")
    for t in types:
        if not _TYPE_FILTER.match(t):
            raise InvalidInput("types", f"{t!r} is not a type or a prefix like 'ccm.worker.*'")
    return tuple(dict.fromkeys(types))


def _validate_subjects(subjects: tuple[str, ...]) -> tuple[str, ...]:
    if len(subjects) > MAX_FILTERS:
        raise InvalidInput("subjects", f"at most {MAX_FILTERS} filters")
    for s in subjects:
        if not s or s == "*" or any(c.isspace() for c in s):
            raise InvalidInput("subjects", f"{s!r} is not a subject id or a 'Prefix-*' pattern")
    return tuple(dict.fromkeys(subjects))


class WebhookSubscription(LrmAggregate):
    """A receiver of outgoing CloudEvents (a grader, an exam system...)."""

    # State (set by the events; not class annotations, which the library would turn into
    # __init__ parameters): url, types, subjects, mode, secret, owner, enabled,
    # disabled_reason, deleted, auth_token, allowed_rate, previous_secret,
    # previous_secret_until.

    def __repr__(self) -> str:
        return f"WebhookSubscription(id={self.id!r}, url={self.url!r}, enabled={self.enabled})"

    # -- events ---------------------------------------------------------------

    class SubscriptionCreated(LrmAggregate.Created):
        url: str
        types: tuple[str, ...]
        subjects: tuple[str, ...]
        mode: str
        owner: str
        secret: str = field(repr=False)
        # The receiver's bearer token, sent on every delivery (``Authorization: Bearer``);
        # kept out of payload() and repr() like the secret. "" = none.
        auth_token: str = field(default="", repr=False)
        # What the receiver granted in the handshake (requests per minute; None: no limit).
        allowed_rate: int | None = None

        def payload(self) -> dict[str, Any]:
            data = super().payload()
            data.pop("secret", None)
            data.pop("auth_token", None)
            return data

        def apply(self, aggregate: WebhookSubscription) -> None:
            aggregate.url = self.url
            aggregate.types = tuple(self.types)
            aggregate.subjects = tuple(self.subjects)
            aggregate.mode = self.mode
            aggregate.secret = self.secret
            aggregate.owner = self.owner
            aggregate.enabled = True
            aggregate.disabled_reason = ""
            aggregate.deleted = False
            aggregate.auth_token = self.auth_token
            aggregate.allowed_rate = self.allowed_rate
            aggregate.previous_secret = ""
            aggregate.previous_secret_until = None

    class SubscriptionDisabled(LrmAggregate.Event):
        reason: str

        def apply(self, aggregate: WebhookSubscription) -> None:
            aggregate.enabled = False
            aggregate.disabled_reason = self.reason

    class SubscriptionEnabled(LrmAggregate.Event):
        def apply(self, aggregate: WebhookSubscription) -> None:
            aggregate.enabled = True
            aggregate.disabled_reason = ""

    class SubscriptionDeleted(LrmAggregate.Event):
        def apply(self, aggregate: WebhookSubscription) -> None:
            aggregate.enabled = False
            aggregate.deleted = True

    class SubscriptionSecretRotated(LrmAggregate.Event):
        """A new signing secret; the one it replaces keeps signing until ``previous_valid_until``
        (both signatures in one ``webhook-signature`` header meanwhile)."""

        secret: str = field(repr=False)
        previous_valid_until: datetime

        def payload(self) -> dict[str, Any]:
            data = super().payload()
            data.pop("secret", None)
            return data

        def apply(self, aggregate: WebhookSubscription) -> None:
            aggregate.previous_secret = aggregate.secret
            aggregate.previous_secret_until = self.previous_valid_until
            aggregate.secret = self.secret

    class SubscriptionReplayRequested(LrmAggregate.Event):
        """Re-send every matching event whose global position is greater than ``from_position``."""

        from_position: int

        def apply(self, aggregate: WebhookSubscription) -> None:
            pass

    # -- commands -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        *,
        url: str,
        secret: str,
        owner: str,
        types: tuple[str, ...] | list[str] = (),
        subjects: tuple[str, ...] | list[str] = (),
        mode: str = "structured",
        auth_token: str = "",
        allowed_rate: int | None = None,
        id: str | None = None,  # noqa: A002
    ) -> WebhookSubscription:
        if mode not in DELIVERY_MODES:
            raise InvalidInput("mode", f"must be one of {', '.join(DELIVERY_MODES)}")
        secret_key(secret)
        if not owner:
            raise InvalidInput("owner", "must not be empty")
        return cls._create_with(
            cls.SubscriptionCreated,
            ctx,
            id=id,
            url=_validate_url(url),
            types=_validate_types(tuple(types)),
            subjects=_validate_subjects(tuple(subjects)),
            mode=mode,
            owner=owner,
            secret=secret,
            auth_token=_validate_auth_token(auth_token),
            allowed_rate=allowed_rate,
        )

    def disable(self, ctx: CommandContext, reason: str) -> None:
        self._require_not_deleted("disable")
        if self.enabled:
            self._record(self.SubscriptionDisabled, ctx, reason=reason or "disabled")

    def enable(self, ctx: CommandContext) -> None:
        self._require_not_deleted("enable")
        if not self.enabled:
            self._record(self.SubscriptionEnabled, ctx)

    def delete(self, ctx: CommandContext) -> None:
        if not self.deleted:
            self._record(self.SubscriptionDeleted, ctx)

    def rotate_secret(self, ctx: CommandContext, secret: str, overlap: timedelta = DEFAULT_ROTATION_OVERLAP) -> None:
        """Sign with ``secret`` from now on; the current secret keeps signing for ``overlap``.

        Rotating again within an overlap drops the oldest secret: at most two sign at once.
        """
        self._require_not_deleted("rotate_secret")
        secret_key(secret)
        if secret == self.secret:
            raise InvalidInput("secret", "must differ from the current secret")
        if not timedelta(0) <= overlap <= MAX_ROTATION_OVERLAP:
            raise InvalidInput("overlap_seconds", f"must be 0..{int(MAX_ROTATION_OVERLAP.total_seconds())}")
        self._record(self.SubscriptionSecretRotated, ctx, secret=secret, previous_valid_until=ctx.at + overlap)

    def request_replay(self, ctx: CommandContext, from_position: int) -> None:
        self._require_not_deleted("replay")
        if from_position < 0:
            raise InvalidInput("from_position", "must be >= 0")
        self._record(self.SubscriptionReplayRequested, ctx, from_position=from_position)

    # -- queries --------------------------------------------------------------

    def signing_secrets(self, at: datetime) -> tuple[str, ...]:
        """The secrets to sign with at ``at``: the current one first, then the previous one
        while its overlap lasts."""
        until = getattr(self, "previous_secret_until", None)
        previous = getattr(self, "previous_secret", "")
        if previous and until is not None and at < until:
            return (self.secret, previous)
        return (self.secret,)

    def matches(self, event_type: str, subject: str) -> bool:
        return type_matches(self.types, event_type) and subject_matches(self.subjects, subject)

    def _require_not_deleted(self, action: str) -> None:
        if self.deleted:
            raise IllegalTransition("WebhookSubscription", "deleted", action)
