"""Standard Webhooks signatures: the spec's test vector, the reference library, rotation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook

from adapters.webhooks.sender import parse_retry_after
from adapters.webhooks.signing import SignatureInvalid, generate_secret, signature, verify, webhook_headers
from domain.errors import InvalidInput
from domain.subscription import secret_key

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_test_vector():
    assert signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG


def test_reference_library_verifies_our_headers():
    secret = generate_secret()
    now = datetime.now(timezone.utc)
    body = b'{"id": "x", "data": {"a": 1}}'
    headers = webhook_headers(secret, "evt-1", int(now.timestamp()), body)
    assert Webhook(secret).verify(body, headers) == {"id": "x", "data": {"a": 1}}
    # And our verify agrees with the reference signer.
    ref = Webhook(secret).sign("evt-1", now.replace(microsecond=0), body.decode())
    verify(secret, {**headers, "webhook-signature": ref}, body, now=now)


def test_rotation_signs_with_every_secret():
    old, new = generate_secret(), generate_secret()
    headers = webhook_headers([new, old], "evt-1", VECTOR_TS, VECTOR_BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    at = datetime.fromtimestamp(VECTOR_TS, timezone.utc)
    verify(old, headers, VECTOR_BODY, now=at)
    verify(new, headers, VECTOR_BODY, now=at)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "webhook-id": "other"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(VECTOR_TS + 1)}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
        lambda h, b: ({**h, "webhook-signature": "v1a," + h["webhook-signature"][3:]}, b),
    ],
)
def test_tampering_is_detected(tamper):
    headers = webhook_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    headers, body = tamper(headers, VECTOR_BODY)
    with pytest.raises(SignatureInvalid):
        verify(VECTOR_SECRET, headers, body, now=datetime.fromtimestamp(VECTOR_TS, timezone.utc))


def test_timestamp_tolerance():
    headers = webhook_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
    at = datetime.fromtimestamp(VECTOR_TS, timezone.utc)
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=at + timedelta(seconds=299))
    with pytest.raises(SignatureInvalid):
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=at + timedelta(seconds=301))
    with pytest.raises(SignatureInvalid):
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=at - timedelta(seconds=301))


def test_generated_secrets_are_valid_and_distinct():
    a, b = generate_secret(), generate_secret()
    assert a.startswith("whsec_") and a != b and len(secret_key(a)) == 32


@pytest.mark.parametrize("bad", ["abc", "whsec_", "whsec_!!!", "whsec_" + "QQ==" * 2, "whsec_" + "A" * 100])
def test_bad_secrets_are_refused(bad):
    with pytest.raises(InvalidInput):
        secret_key(bad)


def test_message_id_with_a_dot_is_refused():
    with pytest.raises(ValueError):
        signature(VECTOR_SECRET, "a.b", VECTOR_TS, b"")


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 01 Jan 2026 12:01:30 GMT", 90.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == seconds
