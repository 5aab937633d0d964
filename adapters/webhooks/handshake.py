"""The abuse-protection handshake of the CloudEvents HTTP web hook spec (``http-webhook.md`` §4),
as the *sender*: before a subscription is activated we ask the target whether it wants
our events.

Request: ``OPTIONS <the exact target URL>`` with ``WebHook-Request-Origin: <our origin>``
(a DNS name for this deployment) and, when the subscription carries one, the bearer token
it will get on deliveries. Only the response *headers* count as consent, not the status:
``WebHook-Allowed-Origin`` must echo our origin or be ``*``; ``WebHook-Allowed-Rate`` (``*``
or requests per minute) is kept with the subscription.

``WebHook-Request-Callback`` (the asynchronous grant) is not offered: a subscription is
created by a grader who controls the receiver and can make it answer the OPTIONS request
synchronously; a pending state waiting for a callback would be a second way to activate a
subscription to protect. A target that wants an asynchronous grant answers without the
headers and the creation is refused with the reason; the grader retries once it grants.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from adapters.webhooks.egress import is_blocked

ORIGIN_HEADER = "WebHook-Request-Origin"
ALLOWED_ORIGIN = "webhook-allowed-origin"
ALLOWED_RATE = "webhook-allowed-rate"


class HandshakeRefused(ValueError):
    """The target did not grant delivery; ``reason`` is what the grader is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    origin: str  # what the target echoed (our origin, or "*")
    rate: int | None  # requests per minute; None: unlimited ("*" or not stated)


def parse_rate(value: str | None) -> int | None:
    """``WebHook-Allowed-Rate``: ``*`` or a positive integer (requests per minute)."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip()
    if not text.isdigit() or int(text) <= 0:
        raise HandshakeRefused(f"answered WebHook-Allowed-Rate {value!r}: not '*' nor a positive integer")
    return int(text)


async def request_grant(
    client: httpx.AsyncClient, url: str, *, origin: str, auth_token: str = "", timeout: float = 10.0
) -> Grant:
    """Send the validation request; return the grant or raise ``HandshakeRefused``."""
    headers = {ORIGIN_HEADER: origin}
    if auth_token:
        headers["Authorization"] = f"Bearer {auth_token}"
    try:
        response = await client.request("OPTIONS", url, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        raise HandshakeRefused("the validation request (OPTIONS) timed out") from None
    except httpx.HTTPError as error:
        if is_blocked(error):
            raise HandshakeRefused(str(error.__cause__ or error).removeprefix("egress policy: ")) from None
        raise HandshakeRefused(f"the validation request (OPTIONS) failed: {type(error).__name__}: {error}") from None
    allowed = response.headers.get(ALLOWED_ORIGIN)
    if allowed is None:
        raise HandshakeRefused(
            f"the receiver did not grant delivery: OPTIONS answered {response.status_code} without "
            f"WebHook-Allowed-Origin (CloudEvents web hook abuse protection; origin {origin!r})"
        )
    allowed = allowed.strip()
    if allowed != "*" and allowed.lower() != origin.lower():
        raise HandshakeRefused(f"the receiver allows origin {allowed!r}, not ours ({origin!r})")
    return Grant(allowed, parse_rate(response.headers.get(ALLOWED_RATE)))
