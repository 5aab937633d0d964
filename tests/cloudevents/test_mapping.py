"""Domain event -> CloudEvent -> HTTP bytes, and back through our parser."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from uuid import UUID

import pytest

from adapters.cloudevents.mapping import (
    BATCH_CONTENT_TYPE,
    check_extension_name,
    encode,
    encode_batch,
    json_safe,
    to_cloudevent,
    to_json_dict,
)
from adapters.cloudevents.parsing import parse_http
from domain.context import CommandContext
from domain.subscription import WebhookSubscription
from tests.cloudevents.support import SOURCE, T0, Gadget, ctx


def moved_event():
    gadget = Gadget.make(ctx(), colour="red")
    gadget.move(CommandContext(at=T0 + timedelta(minutes=1), actor="alice", correlation_id="corr-1"), to="lab")
    return gadget.collect_events()


def test_attributes_and_extensions():
    made, moved = moved_event()
    ce = to_cloudevent(moved, 42, source=SOURCE)
    assert ce.get_id() == str(moved.event_id)
    assert ce.get_type() == "ccm.gadget.moved"
    assert ce.get_source() == SOURCE
    assert ce.get_subject() == moved.originator_id
    assert ce.get_time() == moved.occurred_at
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_extension("sequence") == "1"
    assert ce.get_extension("position") == "42"
    assert ce.get_extension("actor") == "alice"
    assert ce.get_extension("correlationid") == "corr-1"
    assert ce.get_extension("causationid") == moved.metadata["causation_id"]
    assert ce.get_data() == {"to": "lab", "at_time": "2026-01-01T09:01:00Z"}
    # Deterministic: the same event maps to the same id every time (retries, replays).
    assert to_cloudevent(moved, 42, source=SOURCE).get_id() == ce.get_id()


def test_json_safe_types():
    class Colour(Enum):
        RED = "red"

    value = {
        "when": datetime(2026, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        "id": UUID(int=1),
        "n": Decimal("1.5"),
        "c": Colour.RED,
        "t": (1, 2),
        "s": frozenset({"b", "a"}),
        "nan": float("nan"),
    }
    assert json_safe(value) == {
        "when": "2026-01-01T09:00:00Z",
        "id": "00000000-0000-0000-0000-000000000001",
        "n": "1.5",
        "c": "red",
        "t": [1, 2],
        "s": ["'a'", "'b'"] if False else sorted(["a", "b"], key=repr),
        "nan": "nan",
    }
    json.dumps(json_safe(value))


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_http_round_trip(mode):
    _, moved = moved_event()
    ce = to_cloudevent(moved, 7, source=SOURCE)
    message = encode(ce, mode)
    expected_type = "application/cloudevents+json" if mode == "structured" else "application/json"
    assert message.headers["content-type"] == expected_type
    parsed = parse_http(dict(message.headers), message.body)
    assert parsed.mode == mode
    [back] = parsed.events
    assert back.get_id() == ce.get_id()
    assert back.get_extension("sequence") == "1"
    assert back.get_data() == ce.get_data()


def test_batch_round_trip():
    events = [to_cloudevent(e, i, source=SOURCE) for i, e in enumerate(moved_event(), start=1)]
    message = encode_batch(events)
    assert message.headers["content-type"] == BATCH_CONTENT_TYPE
    parsed = parse_http(dict(message.headers), message.body)
    assert parsed.mode == "batch"
    assert [e.get_id() for e in parsed.events] == [e.get_id() for e in events]


def test_subscription_secret_never_reaches_a_cloudevent_or_a_repr():
    secret = "whsec_" + "A" * 32
    sub = WebhookSubscription.create(ctx(), url="https://grader.example/hook", secret=secret, owner="grader1")
    [created] = sub.collect_events()
    ce = to_cloudevent(created, 1, source=SOURCE)
    assert ce.get_type() == "ccm.subscription.created"
    for text in (json.dumps(to_json_dict(ce)), repr(created), repr(sub), encode(ce, "binary").body.decode()):
        assert secret not in text and "AAAA" not in text
    assert created.secret == secret  # still recorded: the dispatcher signs with it


@pytest.mark.parametrize("name", ["TenantId", "tenant-id", "a" * 21, "", "data", "id"])
def test_extension_names_are_checked(name):
    with pytest.raises(ValueError):
        check_extension_name(name)


def test_extension_names_accepted():
    for name in ("sequence", "position", "correlationid", "causationid", "actor", "a" * 20):
        check_extension_name(name)
