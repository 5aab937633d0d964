"""Rotating a subscription's signing secret without losing deliveries: during the overlap
every delivery carries both signatures in one ``webhook-signature`` header (Standard
Webhooks), so receivers verifying with the old or the new secret both accept it; after
the overlap only the new secret signs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from adapters.webhooks.signing import generate_secret, verify
from domain.errors import IllegalTransition, InvalidInput
from domain.subscription import WebhookSubscription
from processors.dispatcher.targets import SubscriptionTarget
from tests.cloudevents.api_support import API, AUTH, started_app
from tests.cloudevents.support import T0, ctx


def subscription() -> WebhookSubscription:
    return WebhookSubscription.create(ctx(), url="https://grader.example/h", secret=generate_secret(), owner="g")


def test_both_secrets_sign_during_the_overlap_and_only_the_new_one_after():
    sub = subscription()
    old, new = sub.secret, generate_secret()
    sub.rotate_secret(ctx(T0 + timedelta(minutes=1)), new, overlap=timedelta(hours=1))
    assert sub.signing_secrets(T0 + timedelta(minutes=30)) == (new, old)
    assert sub.signing_secrets(T0 + timedelta(hours=2)) == (new,)
    target = SubscriptionTarget.from_subscription(sub)
    assert target is not None and target.secret == new
    assert target.extra_secrets(T0 + timedelta(minutes=30)) == (old,)
    assert target.extra_secrets(T0 + timedelta(minutes=61)) == ()


def test_rotating_again_drops_the_oldest():
    sub = subscription()
    first, second, third = sub.secret, generate_secret(), generate_secret()
    sub.rotate_secret(ctx(T0), second)
    sub.rotate_secret(ctx(T0 + timedelta(minutes=1)), third)
    assert sub.signing_secrets(T0 + timedelta(minutes=2)) == (third, second)
    assert first not in repr(sub) and third not in str([e.payload() for e in sub.collect_events()])


@pytest.mark.parametrize(
    ("secret", "overlap"),
    [("whsec_short", timedelta(0)), (None, timedelta(days=8)), (None, timedelta(seconds=-1))],
    ids=["bad-secret", "too-long", "negative"],
)
def test_bad_rotations_are_refused(secret, overlap):
    sub = subscription()
    with pytest.raises(InvalidInput):
        sub.rotate_secret(ctx(), secret or generate_secret(), overlap=overlap)


def test_a_deleted_subscription_cannot_rotate():
    sub = subscription()
    sub.delete(ctx())
    with pytest.raises(IllegalTransition):
        sub.rotate_secret(ctx(), generate_secret())


def deliver_one(client, container, receiver, created):  # noqa: ANN001, ANN201
    """Record an event the subscription receives (a replay request of its own stream) and
    return its delivery as received."""
    answer = client.post(f"{API}/subscriptions/{created['id']}/replay",
                         json={"from_position": container.store.max_position()}, headers=AUTH["grader"])
    assert answer.status_code == 202
    marker = str(container.store.read_stream(created["id"])[-1].event.event_id)

    def received():  # noqa: ANN202
        return [r for r in receiver.ok() if r.headers["webhook-id"] == marker]

    receiver.wait_for(received)
    return received()[-1]


def test_rotation_through_the_api_keeps_old_and_new_receivers_verifying(tmp_path, receiver):
    with started_app(tmp_path) as (client, container):
        created = client.post(f"{API}/subscriptions", json={"url": receiver.url("/rotating"),
                                                            "types": ["ccm.subscription.*"]},
                              headers=AUTH["grader"]).json()
        old = created["secret"]

        rotated = client.post(f"{API}/subscriptions/{created['id']}/rotate-secret", json={"overlap_seconds": 3600},
                              headers=AUTH["grader"])
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old and rotated.json()["previous_valid_until"] is not None
        doc = client.get(f"{API}/subscriptions/{created['id']}", params={"min_position": rotated.json()["position"]},
                         headers=AUTH["grader"])
        assert doc.json()["overlap_until"] is not None and new not in doc.text

        during = deliver_one(client, container, receiver, created)
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):  # a receiver still on the old secret and one already on the new
            Webhook(secret).verify(during.body, during.headers)

        # Rotating again with no overlap: only the newest secret signs from now on.
        newest = client.post(f"{API}/subscriptions/{created['id']}/rotate-secret", json={"overlap_seconds": 0},
                             headers=AUTH["grader"]).json()["secret"]
        after = deliver_one(client, container, receiver, created)
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        verify(newest, after.headers, after.body)
        with pytest.raises(Exception):
            Webhook(new).verify(after.body, after.headers)
        names = [s.event_name for s in container.store.read_stream(created["id"])]
        assert names.count("SubscriptionSecretRotated") == 2


def test_rotating_someone_elses_subscription_is_404(tmp_path, receiver):
    with started_app(tmp_path) as (client, _):
        created = client.post(f"{API}/subscriptions", json={"url": receiver.url()}, headers=AUTH["grader"]).json()
        answer = client.post(f"{API}/subscriptions/{created['id']}/rotate-secret", headers=AUTH["grader2"])
        assert answer.status_code == 404
        too_long = client.post(f"{API}/subscriptions/{created['id']}/rotate-secret",
                               json={"overlap_seconds": 8 * 86400}, headers=AUTH["grader"])
        assert too_long.status_code == 422
