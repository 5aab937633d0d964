"""Incoming CloudEvents: the three modes, validation errors as (field, reason), limits, dedup."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from adapters.cloudevents.dedup import SeenEvents, dedup_key, inbound_command_id
from adapters.cloudevents.parsing import CloudEventParseError, mode_of, parse_http

EVENT = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "urn:lds:prod",
    "type": "lds.session.started",
    "subject": "LabletInstance-1",
    "time": "2026-01-01T09:00:00Z",
    "datacontenttype": "application/json",
    "data": {"session_id": "s-1"},
}
BINARY_HEADERS = {
    "Content-Type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "evt-1",
    "ce-source": "urn:lds:prod",
    "ce-type": "lds.session.started",
    "ce-subject": "LabletInstance-1",
}


def structured(doc=EVENT, content_type="application/cloudevents+json; charset=utf-8", **extra):
    return {"Content-Type": content_type, **extra}, json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        ("application/cloudevents-batch+json", "batch"),
        ("application/cloudevents+json; charset=UTF-8", "structured"),
        ("Application/CloudEvents+JSON", "structured"),
        ("application/json", "binary"),
        ("text/plain", "binary"),
        (None, "binary"),
    ],
)
def test_mode_from_content_type_only(content_type, mode):
    assert mode_of(content_type) == mode


def test_structured():
    parsed = parse_http(*structured())
    [event] = parsed.events
    assert parsed.mode == "structured"
    assert (event.get_id(), event.get_source(), event.get_type()) == ("evt-1", "urn:lds:prod", "lds.session.started")
    assert event.get_data() == {"session_id": "s-1"}
    assert event.get_time() == datetime(2026, 1, 1, 9, tzinfo=timezone.utc)


def test_structured_with_ce_headers_too_is_still_structured():
    """The spec allows ce-* headers on a structured message; the SDK's detection would choke."""
    headers, body = structured(**{"ce-id": "evt-1"})
    assert parse_http(headers, body).events[0].get_id() == "evt-1"


def test_binary():
    parsed = parse_http(BINARY_HEADERS, b'{"session_id": "s-1"}')
    [event] = parsed.events
    assert parsed.mode == "binary"
    assert event.get_type() == "lds.session.started"
    assert event.get_data() == {"session_id": "s-1"}


def test_binary_percent_encoded_header():
    headers = {**BINARY_HEADERS, "ce-subject": "i-123%20abc"}
    assert parse_http(headers, b"{}").events[0].get_subject() == "i-123 abc"


def test_batch():
    docs = [EVENT, {**EVENT, "id": "evt-2"}]
    parsed = parse_http({"content-type": "application/cloudevents-batch+json"}, json.dumps(docs).encode())
    assert parsed.mode == "batch"
    assert [e.get_id() for e in parsed.events] == ["evt-1", "evt-2"]
    assert parse_http({"content-type": "application/cloudevents-batch+json"}, b"[]").events == []


def without(key):
    return {k: v for k, v in EVENT.items() if k != key}


@pytest.mark.parametrize(
    ("headers", "body", "field", "status"),
    [
        ({"content-type": "application/cloudevents+json"}, b"{not json", "body", 400),
        ({"content-type": "application/cloudevents+json"}, b"\xff\xfe", "body", 400),
        ({"content-type": "application/cloudevents+json"}, b"[1]", "body", 400),
        (*structured(without("id")), "id", 400),
        (*structured(without("source")), "source", 400),
        (*structured(without("type")), "type", 400),
        (*structured({**EVENT, "specversion": "0.3"}), "specversion", 400),
        (*structured({**EVENT, "time": "yesterday"}), "body", 400),
        (*structured({**EVENT, "TenantId": "x"}), "TenantId", 400),
        (*structured({**EVENT, "tenant-id": "x"}), "tenant-id", 400),
        (*structured({**EVENT, "averyveryverylongextension": "x"}), "averyveryverylongextension", 400),
        ({"content-type": "application/json"}, b"{}", "specversion", 400),
        ({**BINARY_HEADERS, "ce-id": ""}, b"{}", "id", 400),
        ({**BINARY_HEADERS, "ce-Tenant_Id": "x"}, b"{}", "tenant_id", 400),
        ({**BINARY_HEADERS, "ce-datacontenttype": "application/json"}, b"{}", "datacontenttype", 400),
        (BINARY_HEADERS, b"{oops", "data", 400),
        ({"content-type": "application/cloudevents-batch+json"}, b"{}", "body", 400),
        ({"content-type": "application/cloudevents-batch+json"}, json.dumps([EVENT, without("type")]).encode(), "type", 400),
        (*structured({**EVENT, "data": "x" * 70_000}), "body", 413),
    ],
)
def test_malformed_requests_name_the_field(headers, body, field, status):
    with pytest.raises(CloudEventParseError) as caught:
        parse_http(headers, body)
    assert caught.value.field == field
    assert caught.value.status == status
    problem = caught.value.problem()
    assert problem["status"] == status and problem["field"] == field and problem["detail"]


def test_batch_error_names_the_index():
    body = json.dumps([EVENT, EVENT, without("source")]).encode()
    with pytest.raises(CloudEventParseError) as caught:
        parse_http({"content-type": "application/cloudevents-batch+json"}, body)
    assert caught.value.index == 2 and caught.value.problem()["index"] == 2


def test_size_limits():
    with pytest.raises(CloudEventParseError) as caught:
        parse_http(*structured(), max_body_bytes=10)
    assert caught.value.status == 413
    body = json.dumps([EVENT] * 3).encode()
    with pytest.raises(CloudEventParseError):
        parse_http({"content-type": "application/cloudevents-batch+json"}, body, max_batch_events=2)


def test_dedup_window_by_source_and_id():
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    seen = SeenEvents(capacity=3, ttl=timedelta(minutes=5), clock=lambda: now[0])
    assert not seen.check_and_add("urn:a", "1")
    assert seen.check_and_add("urn:a", "1")
    assert not seen.check_and_add("urn:b", "1")  # same id, other source: different event
    now[0] += timedelta(minutes=6)
    assert not seen.check_and_add("urn:a", "1")  # expired
    for i in range(5):
        seen.check_and_add("urn:c", str(i))
    assert len(seen) == 3
    assert not seen.check_and_add("urn:a", "1")  # evicted by capacity


def test_dedup_key_is_unambiguous_and_command_id_deterministic():
    assert dedup_key("a|b", "c") != dedup_key("a", "b|c")
    assert inbound_command_id("urn:a", "1") == inbound_command_id("urn:a", "1")
    assert inbound_command_id("urn:a", "1") != inbound_command_id("urn:a", "2")
