"""The simulated cloud passes the provider contract (time advanced by a fake clock)."""

from __future__ import annotations

import pytest

from adapters.cloud.simulated import SimulatedCloud
from processors.ports.cloud import LaunchSpec
from tests.cloud.conftest import FakeClock
from tests.cloud.contract import CloudProviderContract, Settle


@pytest.fixture
def cloud(clock: FakeClock) -> SimulatedCloud:
    return SimulatedCloud(clock, seed=1)


@pytest.fixture
def spec() -> LaunchSpec:
    return LaunchSpec("m5zn.metal", "CML-2.9.*", startup_minutes=20, restart_minutes=5)


@pytest.fixture
def settle(clock: FakeClock) -> Settle:
    def an_hour_later() -> None:
        clock.advance(hours=1)

    return an_hour_later


class TestSimulatedCloudContract(CloudProviderContract):
    pass
