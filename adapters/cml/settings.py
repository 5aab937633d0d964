"""Configuration of the CML adapters (environment variables ``LRM_CML_*``) and the worker mapping.

In production each worker VM runs its own CML controller, reachable at ``https://<worker ip>/``
with the fleet's CML credentials; ``endpoint_for_worker`` is that mapping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.cml.resilience import RetryPolicy
from adapters.cml.rest import CmlRestClient, CmlRestSettings
from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from adapters.cml.timing import Clock, Sleep
from processors.ports.cml import CmlEndpoint, CmlGateway


class CmlSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRM_CML_", extra="ignore")

    adapter: Literal["simulated", "rest"] = "simulated"
    # Connection to each worker's controller (REST adapter).
    scheme: Literal["https", "http"] = "https"
    port: int | None = None  # None: the scheme's default port
    username: str = "admin"
    password: str = ""
    verify_tls: str = "true"  # "true", "false" or the path of a CA bundle
    timeout_seconds: float = 30.0
    long_timeout_seconds: float = 300.0
    connect_timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 30.0
    poll_interval_seconds: float = 5.0
    settle_timeout_seconds: float = 1800.0
    min_version: str = "2.8.0"  # the REST client refuses older controllers (system_information)
    # Simulated CML (durations in CML seconds; time_scale turns them into clock seconds).
    sim_time_scale: float = 1.0
    sim_import_seconds_per_node: float = 0.5
    sim_boot_seconds_per_node: float = 30.0
    sim_stop_seconds_per_node: float = 2.0
    sim_wipe_seconds_per_node: float = 1.0
    sim_extract_seconds_per_node: float = 2.0
    sim_import_failure_rate: float = 0.0
    sim_start_failure_rate: float = 0.0
    sim_boot_failure_rate: float = 0.0
    sim_seed: int | None = None
    # Simulated waits wake at each state change; this caps their sleeps so changes made by
    # others are noticed. 0 disables the cap (cheapest against a virtual clock).
    sim_poll_interval_seconds: float = 5.0

    @property
    def verify(self) -> bool | str:
        lowered = self.verify_tls.strip().lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        return self.verify_tls

    def rest_settings(self) -> CmlRestSettings:
        return CmlRestSettings(
            timeout_seconds=self.timeout_seconds,
            long_timeout_seconds=self.long_timeout_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            retry=RetryPolicy(self.max_attempts, self.backoff_base_seconds, self.backoff_max_seconds),
            circuit_failure_threshold=self.circuit_failure_threshold,
            circuit_cooldown_seconds=self.circuit_cooldown_seconds,
            poll_interval_seconds=self.poll_interval_seconds,
            settle_timeout_seconds=self.settle_timeout_seconds,
            min_version=self.min_version,
        )

    def simulated_settings(self) -> SimulatedCmlSettings:
        return SimulatedCmlSettings(
            import_seconds_per_node=self.sim_import_seconds_per_node,
            boot_seconds_per_node=self.sim_boot_seconds_per_node,
            stop_seconds_per_node=self.sim_stop_seconds_per_node,
            wipe_seconds_per_node=self.sim_wipe_seconds_per_node,
            extract_seconds_per_node=self.sim_extract_seconds_per_node,
            settle_timeout_seconds=self.settle_timeout_seconds,
            poll_interval_seconds=self.sim_poll_interval_seconds,
            time_scale=self.sim_time_scale,
            import_failure_rate=self.sim_import_failure_rate,
            start_failure_rate=self.sim_start_failure_rate,
            boot_failure_rate=self.sim_boot_failure_rate,
            seed=self.sim_seed,
        )


def endpoint_for_worker(settings: CmlSettings, worker_id: str, address: str) -> CmlEndpoint:
    """The CML controller of a worker VM: ``https://<ip>/`` with the fleet's credentials."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    port = f":{settings.port}" if settings.port else ""
    return CmlEndpoint(
        worker_id=worker_id,
        base_url=f"{settings.scheme}://{host}{port}/",
        username=settings.username,
        password=settings.password,
        verify=settings.verify,
    )


def build_cml_gateway(
    settings: CmlSettings, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
) -> CmlGateway:
    """The adapter chosen by ``LRM_CML_ADAPTER``; the clock and sleep drive waits and delays."""
    if settings.adapter == "rest":
        return CmlRestClient(settings.rest_settings(), clock=clock, sleep=sleep)
    return SimulatedCml(settings.simulated_settings(), clock=clock, sleep=sleep)
