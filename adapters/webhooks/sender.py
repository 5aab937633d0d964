"""WebhookTransport over httpx: one signed POST per attempt, never following redirects.

Each POST carries the Standard Webhooks headers (a signature per active secret), the
CloudEvents web hook ``WebHook-Request-Origin`` (the origin the handshake used) and, when
the receiver asked for one, ``Authorization: Bearer <token>``. Built with an
``EgressPolicy``, connections go only to addresses the policy allows (checked on the
resolved address at each connection, against DNS rebinding).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from adapters.webhooks.egress import EgressPolicy, guarded_client, is_blocked
from adapters.webhooks.handshake import ORIGIN_HEADER
from adapters.webhooks.signing import webhook_headers
from processors.ports.webhooks import AttemptResult, WebhookRequest

USER_AGENT = "lablet-resource-manager-webhooks/1"
MAX_ERROR_CHARS = 300


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait, from ``Retry-After: <seconds>`` or ``Retry-After: <HTTP date>``."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return max((at - now).total_seconds(), 0.0)


async def _read_at_most(response: httpx.Response, limit: int) -> str:
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit].decode("utf-8", errors="replace")


class HttpWebhookSender:
    """Signs each attempt with a fresh ``webhook-timestamp`` (same id and body on retries)."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        extra_secrets: Callable[[str], list[str]] | None = None,
        policy: EgressPolicy | None = None,
        origin: str = "",
    ) -> None:
        # Redirects are failures (Standard Webhooks, CloudEvents web hooks): never follow.
        if client is None:
            headers = {"user-agent": USER_AGENT}
            client = (guarded_client(policy, headers=headers) if policy is not None
                      else httpx.AsyncClient(follow_redirects=False, headers=headers))
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._wall_clock = wall_clock
        self._extra_secrets = extra_secrets
        self._origin = origin

    async def deliver(self, request: WebhookRequest, *, timeout: float) -> AttemptResult:
        now = self._wall_clock()
        body = request.message.body
        secrets = [request.secret, *request.extra_secrets,
                   *(self._extra_secrets(request.secret) if self._extra_secrets else [])]
        headers = dict(request.message.headers)
        headers.update(webhook_headers(secrets, request.message_id, int(now.timestamp()), body))
        if self._origin:
            headers[ORIGIN_HEADER] = self._origin
        if request.auth_token:
            headers["Authorization"] = f"Bearer {request.auth_token}"
        started = time.perf_counter()
        try:
            async with self._client.stream(
                "POST", request.url, content=body, headers=headers, timeout=timeout, follow_redirects=False
            ) as response:
                error = None
                if not response.is_success:
                    # Read only the start of an error body: enough to explain, never unbounded.
                    error = (await _read_at_most(response, MAX_ERROR_CHARS)) or response.reason_phrase
        except httpx.TimeoutException as exc:
            return AttemptResult(None, time.perf_counter() - started, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            error_text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            return AttemptResult(None, time.perf_counter() - started, error_text, blocked=is_blocked(exc))
        latency = time.perf_counter() - started
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._wall_clock())
        return AttemptResult(response.status_code, latency, error, retry_after)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
