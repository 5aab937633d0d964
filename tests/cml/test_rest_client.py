"""The REST client's own duties, over real HTTP against the local CML-shaped server:
authentication, retries, timeouts, the circuit breaker and retry-safe imports."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
from typing import Any

import certifi
import httpx
import pytest

from adapters.cml import rest
from adapters.cml.resilience import RetryPolicy
from adapters.cml.rest import CmlRestClient, api_base, tls_verify
from processors.ports.cml import (
    CircuitOpen,
    CmlEndpoint,
    CmlRejected,
    CmlUnavailable,
    CmlWaitTimeout,
    NodeState,
)
from tests.cml.conftest import FakeClock, fast_rest_settings, lab_yaml, run
from tests.cml.fake_cml_server import FakeCml

LABS = "/api/v0/labs"


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, 0.01))


# -- authentication ------------------------------------------------------------------------


def test_authenticates_once_and_reuses_the_token(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> None:
        for _ in range(3):
            await client.list_labs(rest_worker)

    run(client, scenario)
    assert fake_cml.calls("POST", "/authenticate") == 1
    assert fake_cml.calls("GET", LABS) == 3


def test_reauthenticates_once_when_the_token_expired(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> list[str]:
        lab_id = await client.import_lab(rest_worker, lab_yaml(1), "instance-auth")
        fake_cml.expire_tokens()  # server-side expiry: the next call gets a 401
        assert await client.list_labs(rest_worker) == [lab_id]
        return await client.list_labs(rest_worker)

    assert len(run(client, scenario)) == 1
    assert fake_cml.calls("POST", "/authenticate") == 2
    assert fake_cml.calls("GET", LABS) == 3  # the 401, its replay, and the next call


def test_bad_credentials_are_rejected_without_retrying(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())
    wrong = CmlEndpoint(rest_worker.worker_id, rest_worker.base_url, "admin", "wrong")

    with pytest.raises(CmlRejected) as refused:
        run(client, lambda: client.list_labs(wrong))
    assert (refused.value.status, refused.value.description) == (403, "Authentication failed!")
    assert fake_cml.calls("POST", "/authenticate") == 1


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_answers_are_retried_until_success(
    fake_cml: FakeCml, rest_worker: CmlEndpoint, status: int
) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.fail_next(2, status, path_contains=LABS)

    assert run(client, lambda: client.list_labs(rest_worker)) == []
    assert fake_cml.calls("GET", LABS) == 3


def test_retries_are_bounded(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    sleep = RecordingSleep()
    client = CmlRestClient(fast_rest_settings(), sleep=sleep, rng=random.Random(3))
    fake_cml.fail_next(10, 503, path_contains=LABS)

    with pytest.raises(CmlUnavailable) as unavailable:
        run(client, lambda: client.list_labs(rest_worker))
    assert "503" in unavailable.value.detail
    assert fake_cml.calls("GET", LABS) == 4
    assert len(sleep.delays) == 3  # one backoff between attempts, none after the last


def test_backoff_honours_retry_after(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    sleep = RecordingSleep()
    settings = fast_rest_settings(retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=1.0))
    client = CmlRestClient(settings, sleep=sleep)
    fake_cml.fail_next(1, 429, path_contains=LABS, retry_after="0.05")

    run(client, lambda: client.list_labs(rest_worker))
    assert sleep.delays and sleep.delays[0] >= 0.05


@pytest.mark.parametrize("status", [400, 403, 405, 409, 422])
def test_other_client_errors_are_not_retried(fake_cml: FakeCml, rest_worker: CmlEndpoint, status: int) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.fail_next(1, status, path_contains=LABS)

    with pytest.raises(CmlRejected) as refused:
        run(client, lambda: client.list_labs(rest_worker))
    assert refused.value.status == status
    assert refused.value.description == f"Injected fault {status}"
    assert fake_cml.calls("GET", LABS) == 1


def test_cml_description_is_carried_by_the_rejection(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> None:
        lab_id = await client.import_lab(rest_worker, lab_yaml(1), "instance-400")
        await client.start_lab(rest_worker, lab_id)
        await client.wipe_lab(rest_worker, lab_id)

    with pytest.raises(CmlRejected) as refused:
        run(client, scenario)
    assert refused.value.description.startswith("Lab is not stopped")
    assert fake_cml.calls("PUT", "/wipe") == 1


def test_dropped_connections_are_retried(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.drop_next(2, path_contains=LABS)

    assert run(client, lambda: client.list_labs(rest_worker)) == []
    assert fake_cml.calls("GET", LABS) == 3


def test_slow_responses_time_out_and_are_retried(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings(timeout_seconds=0.2))
    fake_cml.slow_next(1, 1.0, path_contains=LABS)

    assert run(client, lambda: client.list_labs(rest_worker)) == []
    assert fake_cml.calls("GET", LABS) == 2


def test_a_persistently_slow_controller_is_reported_unavailable(
    fake_cml: FakeCml, rest_worker: CmlEndpoint
) -> None:
    settings = fast_rest_settings(timeout_seconds=0.2, retry=RetryPolicy(max_attempts=2, base_delay=0.001))
    client = CmlRestClient(settings)
    fake_cml.slow_next(2, 1.0, path_contains=LABS)

    with pytest.raises(CmlUnavailable) as unavailable:
        run(client, lambda: client.list_labs(rest_worker))
    assert "Timeout" in unavailable.value.detail


# -- imports -------------------------------------------------------------------------------


def test_import_sends_raw_yaml_with_the_title(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> tuple[str, str | None]:
        lab_id = await client.import_lab(rest_worker, lab_yaml(2, title="from-yaml"), "instance-42")
        return lab_id, await client.find_lab_by_title(rest_worker, "instance-42")

    lab_id, found = run(client, scenario)
    assert found == lab_id
    assert fake_cml.labs[lab_id].title == "instance-42"


def test_an_import_whose_answer_was_lost_is_not_duplicated(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.lose_next(1, path_contains="/import")

    lab_id = run(client, lambda: client.import_lab(rest_worker, lab_yaml(1), "instance-lost"))
    assert list(fake_cml.labs) == [lab_id]
    assert fake_cml.calls("POST", "/import") == 1


def test_an_import_that_never_arrived_is_sent_again(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.fail_next(1, 502, path_contains="/import")

    lab_id = run(client, lambda: client.import_lab(rest_worker, lab_yaml(1), "instance-502"))
    assert list(fake_cml.labs) == [lab_id]
    assert fake_cml.calls("POST", "/import") == 2


def test_find_lab_by_title_falls_back_when_lab_tiles_are_missing(
    fake_cml: FakeCml, rest_worker: CmlEndpoint
) -> None:
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> tuple[str, str | None]:
        lab_id = await client.import_lab(rest_worker, lab_yaml(1), "instance-tiles")
        fake_cml.fail_next(1, 404, path_contains="/populate_lab_tiles")
        return lab_id, await client.find_lab_by_title(rest_worker, "instance-tiles")

    lab_id, found = run(client, scenario)
    assert found == lab_id


# -- waiting and configs -------------------------------------------------------------------


def test_wait_until_booted_times_out_on_a_lab_that_does_not_converge(
    fake_cml: FakeCml, rest_worker: CmlEndpoint
) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.transition_seconds = 60.0  # nodes stay queued far longer than the wait

    async def scenario() -> None:
        lab_id = await client.import_lab(rest_worker, lab_yaml(2), "instance-slow-boot")
        await client.start_lab(rest_worker, lab_id)
        await client.wait_until_booted(rest_worker, lab_id, timeout=0.05)

    with pytest.raises(CmlWaitTimeout) as timed_out:
        run(client, scenario)
    last = timed_out.value.last
    assert last is not None and not last.booted
    assert set(last.nodes.values()) <= {NodeState.QUEUED, NodeState.STARTED}


def test_node_configs_read_plain_string_configurations(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())
    fake_cml.config_as_string = True  # CML before 2.7

    async def scenario() -> dict[str, str]:
        lab_id = await client.import_lab(rest_worker, lab_yaml(2), "instance-strings")
        await client.start_lab(rest_worker, lab_id)
        await client.wait_until_booted(rest_worker, lab_id, timeout=5)
        return await client.node_configs(rest_worker, lab_id)

    configs = run(client, scenario)
    assert sorted(configs) == ["r1", "r2"]
    assert configs["r1"].startswith("!\nhostname r1\n")


@pytest.mark.parametrize(
    ("configuration", "text"),
    [
        ("hostname a\n", "hostname a\n"),
        ([{"name": "Main", "content": "main"}, {"name": "day0", "content": "x"}], "main"),
        ([{"name": "day0", "content": "first"}], "first"),
        ([], ""),
        (None, ""),
    ],
)
def test_configuration_text_accepts_both_shapes(configuration: Any, text: str) -> None:
    assert rest.configuration_text(configuration) == text


# -- circuit breaker -----------------------------------------------------------------------


def test_circuit_opens_after_consecutive_failures_and_half_opens_after_cooldown(
    fake_cml: FakeCml, rest_worker: CmlEndpoint
) -> None:
    clock = FakeClock()
    settings = fast_rest_settings(
        retry=RetryPolicy(max_attempts=1), circuit_failure_threshold=3, circuit_cooldown_seconds=30.0
    )
    client = CmlRestClient(settings, clock=clock)
    fake_cml.fail_next(4, 503, path_contains=LABS)

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(CmlUnavailable):
                await client.list_labs(rest_worker)
        assert client.breaker(rest_worker).state == "open"

        with pytest.raises(CircuitOpen) as short_circuited:
            await client.list_labs(rest_worker)
        assert short_circuited.value.retry_after == pytest.approx(30.0)
        assert fake_cml.calls("GET", LABS) == 3  # the open circuit sent nothing

        clock.advance(30.0)
        assert client.breaker(rest_worker).state == "half-open"
        with pytest.raises(CmlUnavailable):  # the trial call fails: open again
            await client.list_labs(rest_worker)
        assert client.breaker(rest_worker).state == "open"
        with pytest.raises(CircuitOpen):
            await client.list_labs(rest_worker)

        clock.advance(30.0)
        assert await client.list_labs(rest_worker) == []  # the trial succeeds: closed
        assert client.breaker(rest_worker).state == "closed"
        assert await client.list_labs(rest_worker) == []

    run(client, scenario)
    assert fake_cml.calls("GET", LABS) == 6


def test_circuit_is_per_worker(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    settings = fast_rest_settings(retry=RetryPolicy(max_attempts=1), circuit_failure_threshold=1)
    client = CmlRestClient(settings)
    dead = CmlEndpoint("worker-dead", f"http://127.0.0.1:{free_port()}/", "admin", "secret")

    async def scenario() -> None:
        with pytest.raises(CmlUnavailable):
            await client.list_labs(dead)  # connection refused
        with pytest.raises(CircuitOpen):
            await client.list_labs(dead)
        assert await client.list_labs(rest_worker) == []

    run(client, scenario)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "api"),
    [
        ("https://10.0.0.5/", "https://10.0.0.5/api/v0/"),
        ("https://10.0.0.5", "https://10.0.0.5/api/v0/"),
        ("https://cml.example/x", "https://cml.example/api/v0/"),
        ("https://cml.example/x/", "https://cml.example/x/api/v0/"),
        ("10.0.0.5", "https://10.0.0.5/api/v0/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v0/"),
    ],
)
def test_api_base_follows_the_official_client(base_url: str, api: str) -> None:
    assert api_base(base_url) == api


def test_tls_verification_setting(tmp_path: Any) -> None:
    assert tls_verify(True) is True
    assert tls_verify(False) is False
    context = tls_verify(certifi.where())
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] > 0
    assert isinstance(tls_verify(str(tmp_path)), ssl.SSLContext)  # a CA directory
    with pytest.raises(FileNotFoundError):
        tls_verify(str(tmp_path / "missing.pem"))


@pytest.mark.parametrize("verify", [True, False, "ca"])
def test_the_tls_setting_reaches_httpx(monkeypatch: pytest.MonkeyPatch, verify: Any) -> None:
    built: list[dict[str, Any]] = []

    class CapturingClient(httpx.AsyncClient):
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(rest.httpx, "AsyncClient", CapturingClient)
    verify = certifi.where() if verify == "ca" else verify
    client = CmlRestClient(fast_rest_settings(timeout_seconds=7.0))
    client.breaker(CmlEndpoint("w", "https://10.1.2.3/", "u", "p", verify=verify))

    (kwargs,) = built
    assert kwargs["base_url"] == "https://10.1.2.3/api/v0/"
    assert kwargs["timeout"].read == 7.0
    if isinstance(verify, bool):
        assert kwargs["verify"] is verify
    else:
        assert isinstance(kwargs["verify"], ssl.SSLContext)


def test_a_worker_with_a_new_address_gets_a_fresh_session(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    client = CmlRestClient(fast_rest_settings())
    moved = CmlEndpoint(rest_worker.worker_id, rest_worker.base_url.replace("127.0.0.1", "localhost"), "admin", "secret")

    async def scenario() -> None:
        await client.list_labs(rest_worker)
        await client.list_labs(moved)
        assert len(client._retired) == 1

    run(client, scenario)
    assert fake_cml.calls("POST", "/authenticate") == 2
    assert client._retired == []
