"""``CmlGateway`` for a real CML 2.x controller, over its REST API (``/api/v0/``) with httpx.

Behaviour follows the official client (virl2-client) where it matters: JWT from
``POST authenticate``, ``Authorization: Bearer``, one re-authentication on 401, the import
body sent as raw YAML, start/stop/wipe polled to convergence. On top of it, for a fleet:
bounded retries with exponential backoff and jitter on 5xx, 429 and network errors (never on
other 4xx), a circuit breaker per worker, and imports made safe to retry by looking the
title up before re-sending (an import whose answer was lost may have created the lab).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from adapters.cml.controller_check import ControllerStatus, judge
from adapters.cml.resilience import CircuitBreaker, RetryPolicy
from adapters.cml.timing import Clock, Sleep
from adapters.cml.rest_shapes import (
    configuration_text,
    description,
    may_be_running,
    node_state,
    retry_after_header,
    serial_consoles,
)
from processors.ports.cml import (
    CircuitOpen,
    CmlEndpoint,
    CmlIncompatible,
    CmlLabNotFound,
    CmlRejected,
    CmlUnavailable,
    CmlWaitTimeout,
    LabState,
    LabStatus,
    NodeConsole,
    NodeState,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CmlRestSettings:
    timeout_seconds: float = 30.0  # read/write timeout of ordinary calls
    long_timeout_seconds: float = 300.0  # import and extract_configuration (synchronous, slow)
    connect_timeout_seconds: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 30.0
    poll_interval_seconds: float = 5.0  # the official client polls convergence every 5 s
    settle_timeout_seconds: float = 1800.0  # stop and wipe give up after this long
    client_name: str = "LRM"
    min_version: str = "2.8.0"  # oldest CML the client drives (virl2-client 2.10 supports 2.8+)


def api_base(base_url: str) -> str:
    """``https://host`` and ``https://host/x`` → ``https://host/api/v0/`` (as the official client)."""
    if "://" not in base_url:
        base_url = f"https://{base_url}"
    return urljoin(base_url, "api/v0/")


def tls_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """The endpoint's TLS setting as httpx takes it: a CA path becomes an SSL context."""
    if isinstance(verify, bool):
        return verify
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


@dataclass
class _Session:
    endpoint: CmlEndpoint
    client: httpx.AsyncClient
    breaker: CircuitBreaker
    token: str | None = None
    auth_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    status: ControllerStatus | None = None  # from system_information; checked until usable


class CmlRestClient:
    def __init__(
        self,
        settings: CmlRestSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or CmlRestSettings()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._sessions: dict[str, _Session] = {}
        self._retired: list[httpx.AsyncClient] = []
        self._statuses: dict[str, ControllerStatus] = {}

    async def aclose(self) -> None:
        clients = [session.client for session in self._sessions.values()] + self._retired
        self._sessions, self._retired = {}, []
        for client in clients:
            await client.aclose()

    def breaker(self, worker: CmlEndpoint) -> CircuitBreaker:
        return self._session(worker).breaker

    def controller_status(self) -> dict[str, ControllerStatus]:
        """Each worker's controller as last checked (version, ready, problem), for health reports."""
        return dict(self._statuses)

    # -- the port ---------------------------------------------------------------------------

    async def import_lab(self, worker: CmlEndpoint, lab_yaml: str, title: str) -> str:
        # Not idempotent on CML: after an ambiguous failure the lab may exist, so each retry
        # first looks for it by title (callers put the instance id in the title).
        attempts = self.settings.retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = await self._request(
                    worker, "POST", "import", params={"title": title},
                    content=lab_yaml.encode(), timeout=self._long_timeout(), attempts=1,
                )
            except CircuitOpen:
                raise
            except CmlUnavailable as failure:
                if attempt == attempts:
                    raise
                await self._sleep(self.settings.retry.delay(attempt, self._rng, failure.retry_after))
                existing = await self.find_lab_by_title(worker, title)
                if existing is not None:
                    return existing
                continue
            body = response.json()
            if not isinstance(body, dict) or not body.get("id"):
                raise CmlRejected(worker.worker_id, response.status_code, f"import returned no lab id: {body!r}")
            return str(body["id"])
        raise AssertionError("unreachable")

    async def start_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        await self._request(worker, "PUT", f"labs/{lab_id}/start", lab_id=lab_id)

    async def lab_state(self, worker: CmlEndpoint, lab_id: str) -> LabState:
        status = await self._status(worker, lab_id)
        converged = await self._converged(worker, lab_id)
        nodes = await self._nodes(worker, lab_id)
        if any("state" not in node for node in nodes):
            element_state = await self._get(worker, f"labs/{lab_id}/lab_element_state", lab_id=lab_id)
            for node in nodes:
                node.setdefault("state", element_state.get("nodes", {}).get(node["id"]))
        return LabState(
            lab_id=lab_id,
            status=status,
            converged=converged,
            nodes={str(node["label"]): node_state(node.get("state")) for node in nodes},
        )

    async def wait_until_booted(self, worker: CmlEndpoint, lab_id: str, timeout: float) -> LabState:
        deadline = self._clock() + timeout
        while True:
            status = await self._status(worker, lab_id)
            if status is not LabStatus.STARTED:
                raise CmlRejected(worker.worker_id, 409, f"Lab is not started: {lab_id} ({status})")
            if await self._converged(worker, lab_id):
                state = await self.lab_state(worker, lab_id)
                if state.booted:
                    return state
            if self._clock() >= deadline:
                raise CmlWaitTimeout(worker.worker_id, lab_id, "booted", await self.lab_state(worker, lab_id))
            await self._sleep(min(self.settings.poll_interval_seconds, max(0.0, deadline - self._clock())))

    async def stop_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        await self._request(worker, "PUT", f"labs/{lab_id}/stop", lab_id=lab_id)
        await self._settle(worker, lab_id, "stopped", lambda status: status is not LabStatus.STARTED)

    async def wipe_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        await self._request(worker, "PUT", f"labs/{lab_id}/wipe", lab_id=lab_id)
        await self._settle(worker, lab_id, "wiped", lambda status: status is LabStatus.DEFINED_ON_CORE)

    async def delete_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        try:
            status = await self._status(worker, lab_id)
            if status is LabStatus.STARTED:
                await self.stop_lab(worker, lab_id)
                status = await self._status(worker, lab_id)
            if status is not LabStatus.DEFINED_ON_CORE or not await self._converged(worker, lab_id):
                await self.wipe_lab(worker, lab_id)
            await self._request(worker, "DELETE", f"labs/{lab_id}", lab_id=lab_id)
        except CmlLabNotFound:
            return  # already gone: teardown is idempotent

    async def node_configs(self, worker: CmlEndpoint, lab_id: str) -> dict[str, str]:
        configs: dict[str, str] = {}
        for node in await self._nodes(worker, lab_id):
            node_path = f"labs/{lab_id}/nodes/{node['id']}"
            if node.get("state", NodeState.BOOTED) == NodeState.BOOTED:
                try:
                    await self._request(
                        worker, "PUT", f"{node_path}/extract_configuration",
                        lab_id=lab_id, timeout=self._long_timeout(),
                    )
                except CmlRejected:
                    pass  # no extraction for this node (type or state): keep what CML stored
            detail = await self._get(worker, node_path, params={"exclude_configurations": "false"}, lab_id=lab_id)
            text = configuration_text(detail.get("configuration"))
            if text:
                configs[str(node["label"])] = text
        return configs

    async def consoles(self, worker: CmlEndpoint, lab_id: str) -> list[NodeConsole]:
        params = {"data": "true", "operational": "true", "exclude_configurations": "true"}
        found: list[NodeConsole] = []
        for node in await self._get(worker, f"labs/{lab_id}/nodes", params=params, lab_id=lab_id):
            if not may_be_running(node):
                continue
            listed = serial_consoles(node)
            if listed is not None:
                found.extend(listed)
                continue
            try:  # no operational data: ask for the first line's key (400 when there is none)
                key = await self._get(worker, f"labs/{lab_id}/nodes/{node['id']}/keys/console",
                                      params={"line": 0}, lab_id=lab_id)
            except CmlRejected:
                continue
            found.append(NodeConsole(str(node["label"]), 0, str(key)))
        return found

    async def find_lab_by_title(self, worker: CmlEndpoint, title: str) -> str | None:
        try:
            tiles = (await self._get(worker, "populate_lab_tiles")).get("lab_tiles", {})
            labs = [{"id": lab_id, **tile} for lab_id, tile in tiles.items()]
        except CmlRejected:  # controllers without lab tiles: read each lab
            labs = [await self._get(worker, f"labs/{lab_id}") for lab_id in await self.list_labs(worker)]
        matches = [lab for lab in labs if lab.get("lab_title") == title]
        matches.sort(key=lambda lab: str(lab.get("created", "")))
        return str(matches[0]["id"]) if matches else None

    async def list_labs(self, worker: CmlEndpoint) -> list[str]:
        return [str(lab_id) for lab_id in await self._get(worker, "labs", params={"show_all": "true"})]

    # -- lab reads ----------------------------------------------------------------------------

    async def _status(self, worker: CmlEndpoint, lab_id: str) -> LabStatus:
        return LabStatus(await self._get(worker, f"labs/{lab_id}/state", lab_id=lab_id))

    async def _converged(self, worker: CmlEndpoint, lab_id: str) -> bool:
        return bool(await self._get(worker, f"labs/{lab_id}/check_if_converged", lab_id=lab_id))

    async def _nodes(self, worker: CmlEndpoint, lab_id: str) -> list[dict[str, Any]]:
        params = {"data": "true", "exclude_configurations": "true"}
        return list(await self._get(worker, f"labs/{lab_id}/nodes", params=params, lab_id=lab_id))

    async def _settle(
        self, worker: CmlEndpoint, lab_id: str, awaited: str, reached: Callable[[LabStatus], bool]
    ) -> None:
        deadline = self._clock() + self.settings.settle_timeout_seconds
        while True:
            if reached(await self._status(worker, lab_id)) and await self._converged(worker, lab_id):
                return
            if self._clock() >= deadline:
                raise CmlWaitTimeout(worker.worker_id, lab_id, awaited, await self.lab_state(worker, lab_id))
            await self._sleep(min(self.settings.poll_interval_seconds, max(0.0, deadline - self._clock())))

    # -- HTTP ---------------------------------------------------------------------------------

    async def _get(self, worker: CmlEndpoint, path: str, **kwargs: Any) -> Any:
        return (await self._request(worker, "GET", path, **kwargs)).json()

    async def _request(
        self,
        worker: CmlEndpoint,
        method: str,
        path: str,
        *,
        lab_id: str | None = None,
        attempts: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call with retries: 5xx, 429 and network errors are retried, other 4xx raise at once."""
        session = self._session(worker)
        attempts = attempts or self.settings.retry.max_attempts
        for attempt in range(1, attempts + 1):
            session.breaker.before_call()
            try:
                response = await self._exchange(session, method, path, **kwargs)
            except httpx.TransportError as error:  # timeouts, refused and dropped connections
                failure = CmlUnavailable(worker.worker_id, f"{method} {path}: {type(error).__name__} {error}")
            else:
                status = response.status_code
                if status < 500 and status != 429:
                    session.breaker.record_success()
                    if status == 404 and lab_id is not None and description(response).startswith("Lab not found"):
                        raise CmlLabNotFound(worker.worker_id, lab_id)
                    if status >= 400:
                        raise CmlRejected(worker.worker_id, status, description(response))
                    return response
                failure = CmlUnavailable(
                    worker.worker_id, f"{method} {path}: {status} {description(response)}",
                    retry_after=retry_after_header(response),
                )
            session.breaker.record_failure()
            if attempt < attempts:
                await self._sleep(self.settings.retry.delay(attempt, self._rng, failure.retry_after))
        raise failure

    async def _exchange(self, session: _Session, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with the session's token; on 401 authenticate again and replay once."""
        if session.status is None or not session.status.usable:
            refused = await self._check_controller(session)
            if refused is not None:
                return refused
        token = session.token
        if token is None:
            refused = await self._authenticate(session, stale=None)
            if refused is not None:
                return refused
        response = await session.client.request(method, path, headers=self._bearer(session), **kwargs)
        if response.status_code != 401:
            return response
        refused = await self._authenticate(session, stale=session.token)
        if refused is not None:
            return refused
        return await session.client.request(method, path, headers=self._bearer(session), **kwargs)

    async def _check_controller(self, session: _Session) -> httpx.Response | None:
        """Read ``system_information`` (no token) until the controller is compatible and ready.

        An answer other than 200 (502 while CML starts) is returned to the retry loop. A
        controller too old raises ``CmlIncompatible``, one not ready ``CmlUnavailable``; both are
        logged once per change, so operators see why a worker's labs do not start.
        """
        answer = await session.client.get("system_information")
        if answer.status_code != 200:
            return answer
        try:
            info = answer.json()
        except ValueError:
            info = None
        worker_id = session.endpoint.worker_id
        status = judge(worker_id, info, self.settings.min_version, self._clock())
        changed = session.status is None or session.status.problem != status.problem
        session.status = self._statuses[worker_id] = status
        if not status.compatible:
            if changed:
                log.error("cml_controller_incompatible worker=%s version=%s: %s",
                          worker_id, status.version, status.problem)
            raise CmlIncompatible(worker_id, status.version, status.problem or "incompatible controller")
        if not status.ready:
            if changed:
                log.warning("cml_controller_not_ready worker=%s version=%s", worker_id, status.version)
            raise CmlUnavailable(worker_id, status.problem or "not ready",
                                 retry_after=self.settings.poll_interval_seconds)
        if changed:
            log.info("cml_controller_ready worker=%s version=%s", worker_id, status.version)
        return None

    async def _authenticate(self, session: _Session, stale: str | None) -> httpx.Response | None:
        """Fetch a new JWT unless another call already replaced ``stale``; the failed answer otherwise."""
        async with session.auth_lock:
            if session.token is not None and session.token != stale:
                return None
            session.token = None
            endpoint = session.endpoint
            response = await session.client.post(
                "authenticate", json={"username": endpoint.username, "password": endpoint.password}
            )
            if response.status_code != 200:
                return response
            session.token = str(response.json())
            return None

    @staticmethod
    def _bearer(session: _Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.token}"}

    def _long_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.settings.long_timeout_seconds, connect=self.settings.connect_timeout_seconds)

    def _session(self, worker: CmlEndpoint) -> _Session:
        session = self._sessions.get(worker.worker_id)
        if session is None or session.endpoint != worker:
            # A worker can come back with a new IP or credentials: start a fresh session.
            # Closing is async, so the old client is retired and closed by ``aclose``.
            if session is not None:
                self._retired.append(session.client)
            breaker = session.breaker if session else CircuitBreaker(
                worker.worker_id,
                failure_threshold=self.settings.circuit_failure_threshold,
                cooldown=self.settings.circuit_cooldown_seconds,
                clock=self._clock,
            )
            session = _Session(endpoint=worker, client=self._build_client(worker), breaker=breaker)
            self._sessions[worker.worker_id] = session
        return session

    def _build_client(self, worker: CmlEndpoint) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=api_base(worker.base_url),
            verify=tls_verify(worker.verify),
            timeout=httpx.Timeout(self.settings.timeout_seconds, connect=self.settings.connect_timeout_seconds),
            headers={"X-CML-CLIENT": self.settings.client_name},
            follow_redirects=True,
        )
