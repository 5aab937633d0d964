"""Fixtures for the CML adapters: a virtual clock, the fake CML server, lab YAML builders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.cml.resilience import RetryPolicy
from adapters.cml.rest import CmlRestClient, CmlRestSettings
from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from processors.ports.cml import CmlEndpoint, CmlGateway
from tests.cml.fake_cml_server import FakeCml, RunningFakeCml


class FakeClock:
    """Virtual time: ``sleep`` advances ``now`` instead of waiting, and records each delay."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def lab_yaml(node_count: int = 2, title: str = "demo", *, extra_nodes: str = "") -> str:
    """A chain of ``node_count`` IOSv routers r1..rN, each linked to the next."""
    nodes = "\n".join(
        f"  - {{id: n{i}, label: r{i + 1}, node_definition: iosv, x: {i * 100}, y: 0, interfaces: "
        f"[{{id: i0, label: GigabitEthernet0/0, type: physical, slot: 0}}, "
        f"{{id: i1, label: GigabitEthernet0/1, type: physical, slot: 1}}]}}"
        for i in range(node_count)
    )
    links = "\n".join(
        f"  - {{id: l{i}, n1: n{i}, i1: i1, n2: n{i + 1}, i2: i0}}" for i in range(node_count - 1)
    )
    return f"lab: {{version: 0.3.0, title: {title}}}\nnodes:\n{nodes}\n{extra_nodes}links:\n{links or '  []'}\n".replace(
        "links:\n  []", "links: []"
    )


@pytest.fixture(scope="session")
def fake_cml_server() -> Iterator[RunningFakeCml]:
    server = RunningFakeCml(FakeCml()).start()
    yield server
    server.stop()


@pytest.fixture
def fake_cml(fake_cml_server: RunningFakeCml) -> FakeCml:
    fake_cml_server.fake.reset()
    return fake_cml_server.fake


@pytest.fixture
def rest_worker(fake_cml_server: RunningFakeCml) -> CmlEndpoint:
    return CmlEndpoint("worker-1", fake_cml_server.base_url, "admin", "secret")


def fast_rest_settings(**overrides: Any) -> CmlRestSettings:
    values: dict[str, Any] = dict(
        timeout_seconds=5.0,
        long_timeout_seconds=5.0,
        connect_timeout_seconds=2.0,
        retry=RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01),
        poll_interval_seconds=0.01,
        settle_timeout_seconds=5.0,
    )
    values.update(overrides)
    return CmlRestSettings(**values)


def run(client: CmlRestClient, scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async scenario against ``client``, closing its connections afterwards."""

    async def wrapped() -> Any:
        try:
            return await scenario()
        finally:
            await client.aclose()

    return asyncio.run(wrapped())


@dataclass
class Harness:
    """One adapter under test, with the worker to address and a runner for async scenarios."""

    kind: str
    gateway: CmlGateway
    worker: CmlEndpoint
    fake: FakeCml | None = None

    def run(self, scenario: Callable[[CmlGateway, CmlEndpoint], Awaitable[Any]]) -> Any:
        async def wrapped() -> Any:
            try:
                return await scenario(self.gateway, self.worker)
            finally:
                if isinstance(self.gateway, CmlRestClient):
                    await self.gateway.aclose()

        return asyncio.run(wrapped())


@pytest.fixture(params=["simulated", "rest"])
def cml(request: pytest.FixtureRequest) -> Harness:
    if request.param == "simulated":
        clock = FakeClock()
        gateway = SimulatedCml(SimulatedCmlSettings(seed=1), clock=clock, sleep=clock.sleep)
        return Harness("simulated", gateway, CmlEndpoint("worker-1", "https://10.0.0.1/", "admin", "secret"))
    fake = request.getfixturevalue("fake_cml")
    worker = request.getfixturevalue("rest_worker")
    return Harness("rest", CmlRestClient(fast_rest_settings()), worker, fake)
