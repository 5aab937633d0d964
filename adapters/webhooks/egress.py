"""Where webhooks may go: the SSRF policy for outgoing HTTP (subscriptions, handshakes).

A subscription URL is chosen by a grader, so without a policy it could point the
dispatcher at the deployment's own network: ``127.0.0.1``, ``[::1]``, ``0x7f000001``, the
cloud metadata service ``169.254.169.254``, a database at ``localhost:5432``. The policy:

- ``https://`` only, unless ``allow_http`` (development mode);
- every address the host name resolves to must be globally routable: loopback,
  link-local (which holds the metadata address), private, shared, reserved, multicast
  and unspecified addresses are refused, unless they fall in ``allowed_networks`` (an
  admin setting, e.g. ``127.0.0.0/8`` for a receiver on the same machine in tests);
- it is checked when the subscription is created *and* at every connection, on the
  address actually connected to (``GuardedNetworkBackend``): a name that resolved to a
  public address at creation and to ``127.0.0.1`` later (DNS rebinding) is refused;
- redirects are never followed (the sender and the handshake pass
  ``follow_redirects=False``), so a public receiver cannot bounce us inward.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> addresses; the default asks the system resolver (tests pass their own).
Resolver = Callable[[str, int], Awaitable[list[str]]]

# The well-known metadata endpoints, named in refusals because they are the usual target.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class EgressRefused(ValueError):
    """The URL or the address it resolves to is not allowed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``["127.0.0.0/8", "::1", "10.1.2.3"]`` -> networks (a bare address is a /32 or /128)."""
    networks = []
    for value in values:
        value = value.strip()
        if value:
            networks.append(ipaddress.ip_network(value, strict=False))
    return tuple(networks)


def _kind(address: IpAddress) -> str | None:
    """Why the address is not public (None: it is)."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return name
    if not address.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class EgressPolicy:
    allow_http: bool = False
    allowed_networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_settings(cls, *, allow_http: bool, allowed_networks: Sequence[str]) -> EgressPolicy:
        return cls(allow_http=allow_http, allowed_networks=parse_networks(allowed_networks))

    def check_url(self, url: str) -> tuple[str, int]:
        """Scheme and host of a URL; returns (host, port). Raises EgressRefused."""
        parts = urlsplit(url)
        if parts.scheme == "http" and not self.allow_http:
            raise EgressRefused("must use https:// (http:// is allowed only in development mode)")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressRefused("must be an absolute https:// URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise EgressRefused("has an invalid port") from None
        return parts.hostname, port

    def check_address(self, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(ip in network for network in self.allowed_networks):
            return
        kind = _kind(ip)
        if kind is not None:
            raise EgressRefused(
                f"resolves to {ip}, {kind}: refused (an admin may allow it with LRM_WEBHOOK_ALLOWED_NETWORKS)"
            )

    def check_addresses(self, host: str, addresses: Sequence[str]) -> None:
        if not addresses:
            raise EgressRefused(f"host {host!r} does not resolve")
        # Every address: a resolver may answer a public and a private one, and the
        # connection could take either.
        for address in addresses:
            self.check_address(address)

    def resolve(self, host: str, port: int) -> list[str]:
        """Blocking: the addresses of ``host`` (checked). For creation-time checks."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise EgressRefused(f"host {host!r} does not resolve ({exc})") from None
        addresses = _unique(str(info[4][0]) for info in infos)
        self.check_addresses(host, addresses)
        return addresses

    def check(self, url: str) -> None:
        """The whole creation-time check: scheme, then every resolved address."""
        host, port = self.check_url(url)
        self.resolve(host, port)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _unique(str(info[4][0]) for info in infos)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address, and connects to a checked one.

    Connecting to the very address that was checked is what defeats DNS rebinding: the
    name is not resolved a second time by the socket layer. TLS still verifies the
    certificate against the host name (httpcore passes the origin's name as SNI).
    """

    def __init__(
        self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()
        self._resolve = resolver or system_resolver

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"egress policy: host {host!r} does not resolve ({exc})") from None
        except asyncio.TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from None
        try:
            self._policy.check_addresses(host, addresses)
        except EgressRefused as refused:
            raise EgressBlocked(f"egress policy: {host} {refused.reason}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("egress policy: unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class EgressBlocked(httpcore.ConnectError):
    """The connection was refused by the policy (not by the network): do not retry it."""


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the connection pool built on ``GuardedNetworkBackend``."""

    def __init__(self, policy: EgressPolicy, *, resolver: Resolver | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # httpx has no public hook for the network backend; its pool takes one. Replacing
        # the pool keeps httpx's request/response mapping (tests guard this still works).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=GuardedNetworkBackend(policy, resolver=resolver),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
        )


def guarded_client(policy: EgressPolicy, *, resolver: Resolver | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient that obeys the policy and never follows redirects.

    With an explicit transport httpx ignores ``HTTP(S)_PROXY`` from the environment, so
    traffic goes straight to the checked address.
    """
    return httpx.AsyncClient(transport=GuardedTransport(policy, resolver=resolver), follow_redirects=False, **kwargs)


def is_blocked(error: BaseException) -> bool:
    """True when an httpx error came from the egress policy."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, EgressBlocked):
            return True
        current = current.__cause__ or current.__context__
    return False
