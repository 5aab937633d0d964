"""``POST /api/v1/cloudevents`` as a web hook target: the ``access_token`` query parameter
(``http-webhook.md`` §3), 415 for formats we cannot read, and signed ingestion for senders
configured with a secret (Standard Webhooks)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from adapters.webhooks.signing import generate_secret
from tests.cloudevents.api_support import API, AUTH, GRADER, SCORE, STRUCTURED, ready_instance, started_app, step
from tests.cloudevents.api_support import structured as event_of

GRADER_SECRET = generate_secret()
NEXT_SECRET = generate_secret()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    secrets = {"grader:other-grader": f"{GRADER_SECRET} {NEXT_SECRET}"}  # two while it rotates
    with started_app(tmp_path_factory.mktemp("ingest"), cloudevent_sender_secrets=secrets) as pair:
        yield pair


def body_of(event: dict) -> bytes:
    return json.dumps(event).encode()


# -- access_token ---------------------------------------------------------------------------
def test_the_token_may_come_as_access_token(shared):
    client, _ = shared
    answer = client.post(f"{API}/cloudevents", params={"access_token": "svc"}, content=body_of(event_of("x.y")),
                         headers=STRUCTURED)
    assert answer.status_code == 202, answer.text
    assert answer.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [({"access_token": "nope"}, {}, 401), ({"access_token": "usr"}, {}, 403),
     ({"access_token": "svc"}, AUTH["service"], 400), ({"access_token": ""}, {}, 400)],
    ids=["unknown", "wrong-role", "both", "empty"],
)
def test_access_token_refusals(shared, params, headers, status):
    client, _ = shared
    answer = client.post(f"{API}/cloudevents", params=params, content=body_of(event_of("x.y")),
                         headers={**STRUCTURED, **headers})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_header_token_gets_no_cache_control(shared):
    client, _ = shared
    answer = client.post(f"{API}/cloudevents", content=body_of(event_of("x.y")), headers={**STRUCTURED,
                                                                                          **AUTH["service"]})
    assert answer.status_code == 202 and "cache-control" not in answer.headers


# -- 415 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/xml", b"<event/>"), ("application/cloudevents+xml", b"<event/>"),
     ("application/cloudevents-batch+xml", b"<events/>"), ("text/plain", b"hello")],
)
def test_formats_we_cannot_read_are_415(shared, content_type, body):
    client, container = shared
    before = container.store.max_position()
    answer = client.post(f"{API}/cloudevents", content=body, headers={"content-type": content_type,
                                                                     **AUTH["service"]})
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "content-type"
    assert container.store.max_position() == before


def test_binary_mode_with_json_data_is_still_fine(shared):
    client, _ = shared
    headers = {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "urn:x", "ce-type": "x.y",
               "content-type": "application/json; charset=utf-8", **AUTH["service"]}
    assert client.post(f"{API}/cloudevents", content=b'{"a": 1}', headers=headers).status_code == 202


# -- signed ingestion ---------------------------------------------------------------------------
def signed(secret: str, body: bytes, message_id: str = "msg_1") -> dict[str, str]:
    at = datetime.now(timezone.utc)
    signature = Webhook(secret).sign(message_id, at, body.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def test_a_sender_with_a_secret_must_sign(shared):
    client, container = shared
    instance_id = ready_instance(container)
    step(container, instance_id, "login", "collect", "grading")
    body = body_of(event_of("grading.session.completed", source=GRADER, subject=instance_id, data=SCORE))
    headers = {**STRUCTURED, **AUTH["grader2"]}

    unsigned = client.post(f"{API}/cloudevents", content=body, headers=headers)
    assert unsigned.status_code == 401 and unsigned.json()["errors"][0]["field"] == "webhook-signature"
    forged = client.post(f"{API}/cloudevents", content=body, headers={**headers, **signed(generate_secret(), body)})
    assert forged.status_code == 401
    tampered = client.post(f"{API}/cloudevents", content=body.replace(b"42", b"50"),
                           headers={**headers, **signed(GRADER_SECRET, body)})
    assert tampered.status_code == 401
    assert container.store.get(instance_id).state.value == "GRADING"

    accepted = client.post(f"{API}/cloudevents", content=body, headers={**headers, **signed(GRADER_SECRET, body)})
    assert accepted.status_code == 202, accepted.text
    assert container.store.get(instance_id).state.value == "STOPPING"


def test_the_next_secret_is_accepted_during_a_rotation(shared):
    client, _ = shared
    body = body_of(event_of("x.y"))
    answer = client.post(f"{API}/cloudevents", content=body,
                         headers={**STRUCTURED, **AUTH["grader2"], **signed(NEXT_SECRET, body)})
    assert answer.status_code == 202


def test_senders_without_a_secret_need_no_signature(shared):
    client, _ = shared
    answer = client.post(f"{API}/cloudevents", content=body_of(event_of("x.y")), headers={**STRUCTURED,
                                                                                          **AUTH["grader"]})
    assert answer.status_code == 202
