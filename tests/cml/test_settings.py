"""``LRM_CML_*`` settings, the worker → controller mapping and the adapter factory."""

from __future__ import annotations

import pytest

from adapters.cml.rest import CmlRestClient
from adapters.cml.settings import CmlSettings, build_cml_gateway, endpoint_for_worker
from adapters.cml.simulated import SimulatedCml
from processors.ports.cml import CmlGateway


def test_defaults_choose_the_simulated_cml() -> None:
    gateway = build_cml_gateway(CmlSettings(_env_file=None))
    assert isinstance(gateway, SimulatedCml)
    assert isinstance(gateway, CmlGateway)


def test_environment_selects_and_tunes_the_rest_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LRM_CML_ADAPTER": "rest",
        "LRM_CML_USERNAME": "lrm",
        "LRM_CML_PASSWORD": "pw",
        "LRM_CML_VERIFY_TLS": "false",
        "LRM_CML_TIMEOUT_SECONDS": "12",
        "LRM_CML_MAX_ATTEMPTS": "6",
        "LRM_CML_CIRCUIT_FAILURE_THRESHOLD": "3",
        "LRM_CML_MIN_VERSION": "2.9.0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = CmlSettings()
    gateway = build_cml_gateway(settings)
    assert isinstance(gateway, CmlRestClient)
    assert isinstance(gateway, CmlGateway)
    assert gateway.settings.timeout_seconds == 12
    assert gateway.settings.retry.max_attempts == 6
    assert gateway.settings.circuit_failure_threshold == 3
    assert gateway.settings.min_version == "2.9.0"
    endpoint = endpoint_for_worker(settings, "worker-7", "10.1.2.3")
    assert (endpoint.base_url, endpoint.username, endpoint.password, endpoint.verify) == (
        "https://10.1.2.3/", "lrm", "pw", False,
    )
    assert "pw" not in repr(endpoint)


@pytest.mark.parametrize(
    ("value", "verify"),
    [("true", True), ("1", True), ("FALSE", False), ("off", False), ("/etc/cml/ca.pem", "/etc/cml/ca.pem")],
)
def test_verify_tls_accepts_booleans_and_ca_paths(value: str, verify: bool | str) -> None:
    assert CmlSettings(verify_tls=value).verify == verify


@pytest.mark.parametrize(
    ("address", "overrides", "url"),
    [
        ("10.0.0.9", {}, "https://10.0.0.9/"),
        ("10.0.0.9", {"port": 8443}, "https://10.0.0.9:8443/"),
        ("fd00::9", {}, "https://[fd00::9]/"),
        ("127.0.0.1", {"scheme": "http", "port": 8080}, "http://127.0.0.1:8080/"),
    ],
)
def test_worker_address_maps_to_its_controller(address: str, overrides: dict, url: str) -> None:
    assert endpoint_for_worker(CmlSettings(**overrides), "w", address).base_url == url


def test_simulated_settings_are_passed_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRM_CML_SIM_TIME_SCALE", "0.01")
    monkeypatch.setenv("LRM_CML_SIM_BOOT_FAILURE_RATE", "0.2")
    monkeypatch.setenv("LRM_CML_SIM_SEED", "42")
    gateway = build_cml_gateway(CmlSettings())
    assert isinstance(gateway, SimulatedCml)
    assert (gateway.settings.time_scale, gateway.settings.boot_failure_rate, gateway.settings.seed) == (0.01, 0.2, 42)
