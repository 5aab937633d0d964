"""The REST client checks ``system_information`` at connect: a controller too old for it, or not
ready to start nodes, is reported clearly (an error, a log line, the health status) instead of
failing later on some call whose shape changed."""

from __future__ import annotations

import logging

import pytest

from adapters.cml.controller_check import judge, parse_version
from adapters.cml.rest import CmlRestClient
from processors.ports.cml import CmlEndpoint, CmlIncompatible, CmlUnavailable
from tests.cml.conftest import fast_rest_settings, run
from tests.cml.fake_cml import FakeCml

INFO = "/api/v0/system_information"


@pytest.mark.parametrize("version", ["2.6.1+build.3", "2.7.2", "3.0.0", "unknown", ""])
def test_a_controller_it_cannot_drive_is_refused_before_login(
    fake_cml: FakeCml, rest_worker: CmlEndpoint, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    fake_cml.version = version
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(CmlIncompatible) as refused:
                await client.list_labs(rest_worker)
            assert refused.value.retryable is False and refused.value.version == version

    with caplog.at_level(logging.INFO, logger="adapters.cml.rest"):
        run(client, scenario)
    status = client.controller_status()["worker-1"]
    assert status.compatible is False and status.usable is False and status.version == version
    assert "2.x" in (status.problem or "") or "older than the oldest supported (2.8.0)" in (status.problem or "")
    assert fake_cml.calls("POST", "/authenticate") == 0 and fake_cml.calls("GET", "/labs") == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "cml_controller_incompatible" in r.message]
    assert len(errors) == 1  # logged once, not on every call


def test_a_controller_not_ready_is_unavailable_until_it_is(
    fake_cml: FakeCml, rest_worker: CmlEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    fake_cml.ready = False
    client = CmlRestClient(fast_rest_settings(poll_interval_seconds=7.0))

    async def scenario() -> list[str]:
        with pytest.raises(CmlUnavailable) as waiting:
            await client.list_labs(rest_worker)
        assert waiting.value.retryable and waiting.value.retry_after == 7.0
        assert "not ready" in waiting.value.detail
        assert client.controller_status()["worker-1"].ready is False
        fake_cml.ready = True
        await client.list_labs(rest_worker)
        return await client.list_labs(rest_worker)

    with caplog.at_level(logging.INFO, logger="adapters.cml.rest"):
        assert run(client, scenario) == []
    assert client.controller_status()["worker-1"].usable
    assert fake_cml.calls("GET", INFO) == 2  # checked until ready, then no more
    messages = [r.message for r in caplog.records]
    assert any("cml_controller_not_ready" in m for m in messages) and any("cml_controller_ready" in m for m in messages)


def test_a_502_from_a_starting_controller_is_retried(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    fake_cml.fail_next(2, 502, path_contains="system_information")
    client = CmlRestClient(fast_rest_settings())
    assert run(client, lambda: client.list_labs(rest_worker)) == []
    assert fake_cml.calls("GET", INFO) == 3


def test_the_minimum_version_is_a_setting(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    fake_cml.version = "2.9.1"
    client = CmlRestClient(fast_rest_settings(min_version="2.10.0"))
    with pytest.raises(CmlIncompatible, match="older than the oldest supported"):
        run(client, lambda: client.list_labs(rest_worker))


def test_versions_are_read_as_cmls_client_reads_them() -> None:
    assert parse_version("2.10.0+build.21") == (2, 10, 0)
    assert parse_version("2.9.1") == (2, 9, 1)
    assert parse_version("v2.9") is None
    assert judge("w", {"version": "2.8.0", "ready": True}, "2.8.0", 0).usable
    assert judge("w", {"version": "2.10.1", "ready": False}, "2.8.0", 0).problem.startswith("CML controller is not ready")
    assert judge("w", ["not", "a", "dict"], "2.8.0", 0).compatible is False
    with pytest.raises(ValueError):
        judge("w", {"version": "2.10.0"}, "latest", 0)


def test_readyz_reports_the_controller_status(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    from types import SimpleNamespace

    from api.container import Container

    fake_cml.version = "2.7.0"
    client = CmlRestClient(fast_rest_settings())
    with pytest.raises(CmlIncompatible):
        run(client, lambda: client.list_labs(rest_worker))
    report = Container.cml_status(SimpleNamespace(cml_gateway=client))  # type: ignore[arg-type]
    assert report["worker-1"]["ok"] is False and report["worker-1"]["version"] == "2.7.0"
    assert "older than the oldest supported" in report["worker-1"]["problem"]
    assert Container.cml_status(SimpleNamespace()) == {}  # type: ignore[arg-type]  # simulated CML, or no controller yet
