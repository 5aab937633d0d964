"""One aiobotocore client, opened lazily in the running event loop: what the AWS adapters share.

The S3 artifact store and the EC2 provider open their client the same way (settings →
credentials, standard retry mode, timeouts), on first use and once even when calls race,
and close it with the adapter. The client belongs to the loop that opened it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session


class AwsClientSettings(Protocol):
    """The settings fields a client is opened from (``S3Settings``, ``Ec2Settings``)."""

    region: str
    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    max_attempts: int
    connect_timeout_seconds: float
    read_timeout_seconds: float


class LazyAwsClient:
    """``await get()`` opens the ``service`` client once; ``await aclose()`` closes it.

    ``config`` adds service-specific ``AioConfig`` options (e.g. ``s3={...}``). ``on_open``
    runs on the fresh client before anyone else sees it; if it fails the client is closed
    and the next ``get()`` tries again.
    """

    def __init__(
        self,
        service: str,
        settings: AwsClientSettings,
        session: AioSession | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        on_open: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self._session = session or get_session()
        self._config = dict(config or {})
        self._on_open = on_open
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._open_lock = asyncio.Lock()

    async def get(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._open_lock:
            if self._client is None:
                s = self.settings
                stack = AsyncExitStack()
                try:
                    client = await stack.enter_async_context(
                        self._session.create_client(
                            self.service,
                            region_name=s.region,
                            endpoint_url=s.endpoint_url,
                            aws_access_key_id=s.access_key_id,
                            aws_secret_access_key=s.secret_access_key,
                            aws_session_token=s.session_token,
                            config=AioConfig(
                                retries={"max_attempts": s.max_attempts, "mode": "standard"},
                                connect_timeout=s.connect_timeout_seconds,
                                read_timeout=s.read_timeout_seconds,
                                **self._config,
                            ),
                        )
                    )
                    if self._on_open is not None:
                        await self._on_open(client)
                except BaseException:
                    await stack.aclose()
                    raise
                self._client, self._stack = client, stack
        return self._client

    async def aclose(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()
