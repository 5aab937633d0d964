"""``EndpointValidator`` for subscriptions: the egress policy, then the handshake.

Runs when a subscription is created (from a request thread, blocking): the URL must pass
the SSRF policy on every address its host resolves to, and the receiver must grant
delivery through the CloudEvents web hook handshake. Either refusal is an
``InvalidInput("url", reason)``, i.e. a 422 problem naming the field and saying why, and
nothing is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from adapters.webhooks.egress import EgressPolicy, EgressRefused, guarded_client
from adapters.webhooks.handshake import HandshakeRefused, request_grant
from domain.errors import InvalidInput
from processors.ports.webhooks import EndpointGrant


class HttpEndpointValidator:
    def __init__(
        self,
        policy: EgressPolicy,
        *,
        origin: str,
        timeout: float = 10.0,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.policy = policy
        self.origin = origin
        self.timeout = timeout
        self._client_factory = client_factory or (lambda: guarded_client(policy))

    def validate(self, url: str, *, auth_token: str = "") -> EndpointGrant:
        try:
            self.policy.check(url)
        except EgressRefused as refused:
            raise InvalidInput("url", refused.reason) from None
        try:
            grant = asyncio.run(self._handshake(url, auth_token))
        except HandshakeRefused as refused:
            raise InvalidInput("url", refused.reason) from None
        return EndpointGrant(allowed_rate=grant.rate)

    async def _handshake(self, url: str, auth_token: str):  # noqa: ANN202 - handshake.Grant
        async with self._client_factory() as client:
            return await request_grant(client, url, origin=self.origin, auth_token=auth_token, timeout=self.timeout)
