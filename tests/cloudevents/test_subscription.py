"""The WebhookSubscription aggregate."""

from __future__ import annotations

import pytest

from domain.errors import IllegalTransition, InvalidInput
from domain.subscription import WebhookSubscription, subject_matches, type_matches
from processors.dispatcher.targets import SubscriptionTarget
from tests.cloudevents.support import ctx

SECRET = "whsec_" + "B" * 32


def new(**overrides):
    args = dict(url="https://grader.example/hook", secret=SECRET, owner="grader1", types=["ccm.lablet.instance.*"])
    args.update(overrides)
    return WebhookSubscription.create(ctx(), **args)


def test_create_and_target():
    sub = new(subjects=["LabletInstance-1"], mode="binary")
    assert sub.enabled and not sub.deleted and sub.version == 0
    target = SubscriptionTarget.from_subscription(sub)
    assert target == SubscriptionTarget(
        sub.id, "https://grader.example/hook", SECRET, "binary", ("ccm.lablet.instance.*",), ("LabletInstance-1",)
    )
    assert SECRET not in repr(target)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "/relative"}, "url"),
        ({"secret": "plain"}, "secret"),
        ({"mode": "carrier-pigeon"}, "mode"),
        ({"owner": ""}, "owner"),
        ({"types": ["CCM.Bad"]}, "types"),
        ({"types": ["ccm.*.x"]}, "types"),
        ({"subjects": [""]}, "subjects"),
        ({"subjects": ["*"]}, "subjects"),
    ],
)
def test_invalid_input(overrides, field):
    with pytest.raises(InvalidInput) as caught:
        new(**overrides)
    assert caught.value.field == field


def test_lifecycle():
    sub = new()
    sub.disable(ctx(), "HTTP 410: receiver gone")
    assert not sub.enabled and sub.disabled_reason.startswith("HTTP 410")
    assert SubscriptionTarget.from_subscription(sub) is None
    sub.disable(ctx(), "again")  # idempotent: nothing recorded
    sub.enable(ctx())
    assert sub.enabled and sub.disabled_reason == ""
    sub.request_replay(ctx(), 17)
    sub.delete(ctx())
    sub.delete(ctx())
    names = [e.event_name for e in sub.collect_events()]
    assert names == [
        "SubscriptionCreated",
        "SubscriptionDisabled",
        "SubscriptionEnabled",
        "SubscriptionReplayRequested",
        "SubscriptionDeleted",
    ]
    with pytest.raises(IllegalTransition):
        sub.enable(ctx())
    with pytest.raises(IllegalTransition):
        sub.request_replay(ctx(), 0)


def test_replay_position_must_not_be_negative():
    with pytest.raises(InvalidInput):
        new().request_replay(ctx(), -1)


@pytest.mark.parametrize(
    ("filters", "event_type", "match"),
    [
        ((), "ccm.worker.ready", True),
        (("*",), "ccm.worker.ready", True),
        (("ccm.worker.ready",), "ccm.worker.ready", True),
        (("ccm.worker.ready",), "ccm.worker.ready.x", False),
        (("ccm.worker.*",), "ccm.worker.ready", True),
        (("ccm.worker.*",), "ccm.worker.template.registered", True),
        (("ccm.worker.*",), "ccm.workers.ready", False),
        (("ccm.lablet.instance.*", "ccm.worker.ready"), "ccm.worker.ready", True),
    ],
)
def test_type_filters(filters, event_type, match):
    assert type_matches(filters, event_type) is match


@pytest.mark.parametrize(
    ("filters", "subject", "match"),
    [
        ((), "Worker-1", True),
        (("Worker-1",), "Worker-1", True),
        (("Worker-1",), "Worker-12", False),
        (("Worker-*",), "Worker-12", True),
        (("Worker-*",), "WorkerTemplate-1", False),
    ],
)
def test_subject_filters(filters, subject, match):
    assert subject_matches(filters, subject) is match
