"""The CloudEvents web hook abuse protection (``http-webhook.md`` §4) both ways, and the
bearer token on deliveries (§3).

As a sender: a subscription is activated only when its receiver grants the OPTIONS
validation request; every delivery carries ``WebHook-Request-Origin`` and, when asked
for, ``Authorization: Bearer``. As a target: ``OPTIONS /api/v1/cloudevents`` grants.
"""

from __future__ import annotations

import pytest

from tests.cloudevents.api_support import API, AUTH, started_app


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    with started_app(tmp_path_factory.mktemp("handshake")) as pair:
        yield pair


def subscribe(client, url, **body):  # noqa: ANN001, ANN003, ANN201
    return client.post(f"{API}/subscriptions", json={"url": url, **body}, headers=AUTH["grader"])


def at_path(path, receiver):  # noqa: ANN001, ANN201
    return [r for r in receiver.ok() if r.path == path]


def test_creation_sends_the_validation_request_to_the_exact_url(shared, receiver):
    client, _ = shared
    answer = subscribe(client, receiver.url("/hooks/a?tenant=1"), auth_token="receiver-token-1")
    assert answer.status_code == 201, answer.text
    [validation] = receiver.handshakes
    assert validation.path == "/hooks/a"
    assert validation.headers["webhook-request-origin"] == "lrm.test"
    assert validation.headers["authorization"] == "Bearer receiver-token-1"
    assert receiver.requests == []  # nothing delivered by the handshake itself


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("refuse", "without WebHook-Allowed-Origin"),
        ({"webhook-allowed-origin": "someone-else.example"}, "not ours"),
        ({"webhook-allowed-origin": "*", "webhook-allowed-rate": "-3"}, "WebHook-Allowed-Rate"),
    ],
    ids=["405", "other-origin", "bad-rate"],
)
def test_a_receiver_that_refuses_gets_no_subscription_and_the_grader_a_clear_problem(shared, receiver, answer,
                                                                                    reason):
    client, container = shared
    receiver.handshake = answer
    before = container.store.max_position()
    refused = subscribe(client, receiver.url("/hooks/closed"))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    [error] = refused.json()["errors"]
    assert error["field"] == "url" and reason in error["reason"]
    assert container.store.max_position() == before  # not activated: nothing recorded
    assert len(receiver.handshakes) == 1


def test_an_unreachable_receiver_is_refused_too(shared):
    client, _ = shared
    refused = subscribe(client, "http://127.0.0.1:9/hook")  # the discard port: nobody listens
    assert refused.status_code == 422
    assert "OPTIONS" in refused.json()["errors"][0]["reason"]


def test_the_granted_rate_is_kept_with_the_subscription(shared, receiver):
    client, _ = shared
    receiver.handshake = {"webhook-allowed-origin": "*", "webhook-allowed-rate": "120"}
    created = subscribe(client, receiver.url("/rated")).json()
    doc = client.get(f"{API}/subscriptions/{created['id']}", params={"min_position": created["position"]},
                     headers=AUTH["grader"]).json()
    assert doc["allowed_rate"] == 120


def test_deliveries_carry_the_origin_and_the_bearer_token(shared, receiver):
    client, container = shared
    created = subscribe(client, receiver.url("/bearer"), types=["ccm.subscription.*"],
                        auth_token="s3cr3t-token").json()
    # The subscription's own replay event is delivered to it.
    client.post(f"{API}/subscriptions/{created['id']}/replay", json={"from_position": created["position"]},
                headers=AUTH["grader"])
    receiver.wait_for(lambda: at_path("/bearer", receiver))
    delivery = at_path("/bearer", receiver)[0]
    assert delivery.headers["webhook-request-origin"] == "lrm.test"
    assert delivery.headers["authorization"] == "Bearer s3cr3t-token"
    # The token is a secret like the signing key: never in events, read models or answers.
    shown = client.get(f"{API}/subscriptions/{created['id']}", headers=AUTH["grader"]).text
    timeline = str([s.event.payload() for s in container.store.read_stream(created["id"])])
    assert "s3cr3t-token" not in shown + timeline + str(created) + delivery.body.decode()


def test_no_token_no_authorization_header(shared, receiver):
    client, _ = shared
    created = subscribe(client, receiver.url("/plain"), types=["ccm.subscription.*"]).json()
    client.post(f"{API}/subscriptions/{created['id']}/replay", json={"from_position": created["position"]},
                headers=AUTH["grader"])
    receiver.wait_for(lambda: at_path("/plain", receiver))
    assert "authorization" not in at_path("/plain", receiver)[0].headers


def test_a_token_that_is_not_a_bearer_token_is_422(shared, receiver):
    client, _ = shared
    answer = subscribe(client, receiver.url(), auth_token="two words")
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "auth_token"
    assert receiver.handshakes == []  # refused before asking the receiver


# -- as a target: OPTIONS /api/v1/cloudevents ------------------------------------------------
def test_we_grant_the_validation_request_as_a_target(shared):
    client, _ = shared
    answer = client.options(f"{API}/cloudevents", headers={"WebHook-Request-Origin": "eventemitter.example.com"})
    assert answer.status_code == 200
    assert answer.headers["webhook-allowed-origin"] == "eventemitter.example.com"
    assert answer.headers["webhook-allowed-rate"] == "*"
    assert "POST" in answer.headers["allow"]


def test_a_requested_rate_is_answered(shared):
    client, _ = shared
    answer = client.options(f"{API}/cloudevents", headers={"WebHook-Request-Origin": "e.example",
                                                            "WebHook-Request-Rate": "90"})
    assert answer.headers["webhook-allowed-rate"] == "90"


def test_allowed_origins_and_rate_are_settings(tmp_path):
    with started_app(tmp_path, cloudevents_allowed_origins="lds.example.com, grader.example.com",
                     cloudevents_allowed_rate="60") as (client, _):
        granted = client.options(f"{API}/cloudevents", headers={"WebHook-Request-Origin": "LDS.example.com",
                                                                 "WebHook-Request-Rate": "600"})
        assert granted.status_code == 200 and granted.headers["webhook-allowed-rate"] == "60"
        other = client.options(f"{API}/cloudevents", headers={"WebHook-Request-Origin": "evil.example"})
        assert other.status_code == 403 and "webhook-allowed-origin" not in other.headers
        plain = client.options(f"{API}/cloudevents")
        assert plain.status_code == 200 and "webhook-allowed-origin" not in plain.headers
