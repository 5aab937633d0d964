"""The SSRF policy for webhooks (issue 16): internal addresses are refused at creation (422
problem) and at delivery on the address actually connected to (DNS rebinding); an admin
allow-list opens chosen networks; http:// only in development mode."""

from __future__ import annotations

import asyncio

import pytest

from adapters.webhooks.egress import EgressPolicy, EgressRefused, guarded_client, parse_networks
from adapters.webhooks.sender import HttpWebhookSender
from processors.dispatcher.policy import classify
from processors.ports.webhooks import EncodedMessage, WebhookRequest
from tests.cloudevents.api_support import API, AUTH, started_app

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# The URLs of the issue, each posted to before the policy existed.
INTERNAL = [
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
    "https://0x7f000001/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://localhost:5432/",
    "https://10.1.2.3/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused(url):
    with pytest.raises(EgressRefused):
        EgressPolicy().check(url)


def test_the_reason_names_the_address_and_its_kind():
    with pytest.raises(EgressRefused, match="169.254.169.254, a cloud metadata address"):
        EgressPolicy().check("https://169.254.169.254/")
    with pytest.raises(EgressRefused, match="loopback"):
        EgressPolicy().check("https://0x7f000001/")


def test_public_addresses_pass_and_the_allow_list_opens_chosen_networks():
    EgressPolicy().check("https://8.8.8.8/hook")
    allowed = EgressPolicy(allowed_networks=parse_networks(["127.0.0.0/8", "::1"]))
    allowed.check("https://127.0.0.1/hook")
    allowed.check("https://[::1]/hook")
    with pytest.raises(EgressRefused):
        allowed.check("https://169.254.169.254/")  # only what was listed


def test_http_only_in_development_mode():
    with pytest.raises(EgressRefused, match="https"):
        EgressPolicy().check_url("http://8.8.8.8/hook")
    EgressPolicy(allow_http=True).check_url("http://8.8.8.8/hook")


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(EgressRefused, match="does not resolve"):
        EgressPolicy().check("https://grader.invalid/hook")


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """Production settings: no development mode, no allow-list."""
    with started_app(tmp_path_factory.mktemp("prod"), development=False, webhook_allowed_networks="") as pair:
        yield pair


@pytest.mark.parametrize("url", INTERNAL[:5])
def test_creating_a_subscription_to_an_internal_address_is_a_422_problem(production, url):
    client, container = production
    before = container.store.max_position()
    answer = client.post(f"{API}/subscriptions", json={"url": url}, headers=AUTH["grader"])
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"] == "url"
    assert container.store.max_position() == before


def test_http_is_refused_outside_development_mode(production, receiver):
    client, _ = production
    answer = client.post(f"{API}/subscriptions", json={"url": receiver.url()}, headers=AUTH["grader"])
    assert answer.status_code == 422
    assert "https" in answer.json()["detail"]
    assert receiver.handshakes == [] and receiver.requests == []


def _request(url: str) -> WebhookRequest:
    message = EncodedMessage({"content-type": "application/cloudevents+json"}, b'{"id": "1"}')
    return WebhookRequest(url, "msg-1", message, SECRET)


def _deliver(policy: EgressPolicy, url: str, resolves_to: str):  # noqa: ANN202 - AttemptResult
    async def resolver(host: str, port: int) -> list[str]:
        return [resolves_to]

    async def run():  # noqa: ANN202
        sender = HttpWebhookSender(guarded_client(policy, resolver=resolver))
        try:
            return await sender.deliver(_request(url), timeout=5)
        finally:
            await sender._client.aclose()

    return asyncio.run(run())


def test_delivery_checks_the_address_it_connects_to_dns_rebinding(receiver):
    """A name that passed at creation and now resolves to 127.0.0.1 is refused at connect
    time, and the refusal is final (a dead letter), not a retry."""
    port = receiver.base_url.rsplit(":", 1)[1]
    url = f"http://rebinding.test:{port}/hook"
    result = _deliver(EgressPolicy(allow_http=True), url, resolves_to="127.0.0.1")
    assert result.status is None and result.blocked and "loopback" in (result.error or "")
    assert classify(result) == "dead_letter"
    assert receiver.requests == []


def test_delivery_connects_to_the_checked_address_not_a_second_lookup(receiver):
    # ``rebinding.test`` does not resolve on this machine: reaching the receiver proves the
    # connection used the address the policy checked.
    port = receiver.base_url.rsplit(":", 1)[1]
    allowed = EgressPolicy(allow_http=True, allowed_networks=parse_networks(["127.0.0.0/8"]))
    result = _deliver(allowed, f"http://rebinding.test:{port}/hook", resolves_to="127.0.0.1")
    assert result.status == 200
    assert receiver.requests[0].headers["host"] == f"rebinding.test:{port}"


def test_redirects_are_not_followed_by_a_guarded_client(receiver):
    receiver.respond("msg-1", ("redirect", "http://169.254.169.254/latest/meta-data/"))
    allowed = EgressPolicy(allow_http=True, allowed_networks=parse_networks(["127.0.0.0/8"]))
    result = _deliver(allowed, receiver.url(), resolves_to="127.0.0.1")
    assert result.status == 307 and classify(result) == "dead_letter"
    assert len(receiver.requests) == 1
