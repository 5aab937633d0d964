"""Standard Webhooks (v1, HMAC-SHA256) signing and verification with the stdlib.

Signed content: ``"{webhook-id}.{webhook-timestamp}.{body}"`` byte for byte; the
signature header is a space-separated list of ``v1,<base64>`` entries, one per secret
(several during a secret rotation). Secrets are ``whsec_<base64 key>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from domain.subscription import SECRET_PREFIX, secret_key

DEFAULT_TOLERANCE = 300  # seconds, both directions, like the reference library


class SignatureInvalid(ValueError):
    pass


def generate_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64 HMAC-SHA256>`` entry."""
    if "." in message_id:
        raise ValueError("webhook-id must not contain '.'")
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(secrets_: str | Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    keys = [secrets_] if isinstance(secrets_, str) else list(secrets_)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in keys),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    """Raise SignatureInvalid unless one v1 entry matches and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        entries = lowered["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        raise SignatureInvalid("missing or malformed webhook-* headers") from None
    current = (now or datetime.now(timezone.utc)).timestamp()
    if abs(current - timestamp) > tolerance:
        raise SignatureInvalid("timestamp outside the tolerance")
    expected = signature(secret, message_id, timestamp, body).encode()
    for entry in entries:
        if entry.startswith("v1,") and hmac.compare_digest(entry.encode(), expected):
            return
    raise SignatureInvalid("no matching signature")
