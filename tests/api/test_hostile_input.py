"""Issue 16: the exact hostile requests that once answered 500 or were stored as they were.

Each answers 4xx problem+json naming the field, appends nothing, and leaves every read
model current: on SQLite and on PostgreSQL (where NUL in text used to stop projections).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from tests.api.hostile_support import STORES, hostile_client, read_models_current
from tests.api.test_instances_support import ADMIN, API, AUTH, NOW, assert_problem, by_callers, head
from tests.api.test_templates_support import caught_up, definition_body, reserve, running_worker

Client = tuple[TestClient, Container]
DEFINITION = "ccna-basic-routing"


@pytest.fixture(scope="module", params=STORES)
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with hostile_client(request.param, tmp_path_factory.mktemp(request.param)) as pair:
        yield pair


def refused(app: Client, method: str, url: str, status: int, field: str | None, role: str = "admin",
            **kwargs: Any) -> dict[str, Any]:
    """Send, expect the problem, and check that no caller event was appended."""
    client, container = app
    before = head(container)
    headers = {**AUTH[role], **kwargs.pop("headers", {})}
    if "json" in kwargs:  # escaped (ensure_ascii), as a client would send a lone surrogate
        kwargs["content"] = json.dumps(kwargs.pop("json"))
        headers["content-type"] = "application/json"
    response = client.request(method, url, headers=headers, **kwargs)
    body = assert_problem(response, status, field)
    assert by_callers(container, before) == []
    assert read_models_current(container)
    return body


def booking(**fields: Any) -> dict[str, Any]:
    return {"definition": DEFINITION, **fields}


# -- text -------------------------------------------------------------------------------------
def test_a_nul_in_reservation_id_is_refused(app: Client) -> None:
    body = refused(app, "POST", f"{API}/instances", 422, "reservation_id", role="user",
                   json={"definition": "...", "reservation_id": "x\u0000", "duration_minutes": 30})
    assert "U+0000" in body["errors"][0]["reason"]
    refused(app, "POST", f"{API}/instances", 422, "reservation_id", role="user",
            json=booking(reservation_id="x\u0000", duration_minutes=30))


def test_a_nul_in_owner_id_is_refused(app: Client) -> None:
    refused(app, "POST", f"{API}/instances", 422, "owner_id", role="service",
            json=booking(owner_id="student\u0000", duration_minutes=30))


@pytest.mark.parametrize("text", ["x\ud800", "a\x1b[31mred", "tab\there", "del\x7f", "c1\x85"])
def test_other_control_characters_and_lone_surrogates_are_refused(app: Client, text: str) -> None:
    refused(app, "POST", f"{API}/instances", 422, "reservation_id", role="service",
            json=booking(owner_id="student-7", reservation_id=text))


def test_a_nul_in_a_class_seat_or_a_quota_member_is_refused(app: Client) -> None:
    refused(app, "POST", f"{API}/classes", 422, "owners", role="instructor",
            json={"definition": DEFINITION, "owners": ["s-1", "s-2\u0000"], "duration_minutes": 30})
    refused(app, "POST", f"{API}/classes", 422, "timeslot_start", role="instructor",
            json={"definition": DEFINITION, "owners": ["s-1"], "timeslot_start": "9999-12-31T23:59:00Z"})
    refused(app, "PUT", f"{API}/quotas/group/g-1", 422, "members", json={"members": ["a\u0000"]})


def test_template_tags_are_bounded_like_ec2_tags(app: Client) -> None:
    from tests.api.test_templates_support import template_body

    refused(app, "PUT", f"{API}/worker-templates/tagged", 422, "tags", json=template_body(tags={"k" * 129: "v"}))
    refused(app, "PUT", f"{API}/worker-templates/tagged", 422, "tags", json=template_body(tags={"k": "v" * 257}))
    refused(app, "PUT", f"{API}/worker-templates/tagged", 422, "tags", json=template_body(tags={"k\u0000": "v"}))


def test_a_nul_in_a_path_parameter_is_refused_not_a_500(app: Client) -> None:
    refused(app, "GET", f"{API}/instances/LabletInstance-%00", 422, "path")
    refused(app, "GET", f"{API}/worker-templates/x%00", 422, "path")


def test_a_nul_in_a_query_parameter_is_refused(app: Client) -> None:
    refused(app, "GET", f"{API}/instances?owner_id=a%00b", 422, "query.owner_id")


def test_multi_line_free_text_keeps_its_newlines_but_not_other_controls(app: Client) -> None:
    client, container = app
    yaml = definition_body()["lab_yaml"]
    refused(app, "POST", f"{API}/definitions", 422, "lab_yaml",
            json=definition_body(name="nul-in-yaml", lab_yaml=yaml.replace("lab:", "lab:\u0000", 1)))
    response = client.post(f"{API}/definitions", headers=ADMIN,
                           json=definition_body(name="crlf-yaml", lab_yaml=yaml.replace("\n", "\r\n")))
    assert response.status_code == 201, response.text


def test_a_nul_in_cloudevent_data_is_refused(app: Client) -> None:
    event = {"specversion": "1.0", "id": "e-1", "source": "urn:lds", "type": "lds.session.started",
             "subject": "LabletInstance-x", "data": {"note": "a\u0000b"}}
    body = refused(app, "POST", f"{API}/cloudevents", 400, None, role="service", content=json.dumps(event),
                   headers={"content-type": "application/cloudevents+json"})
    assert body["field"] == "body" and "U+0000" in body["reason"]


def test_a_correlation_id_with_control_characters_is_replaced_not_recorded(app: Client) -> None:
    client, container = app
    before = head(container)
    response = client.post(f"{API}/instances", json=booking(duration_minutes=30),
                           headers={**AUTH["user"], "X-Correlation-Id": "abc\x00def", "X-Request-Id": b"r\x85"})
    assert response.status_code == 201, response.text
    assert "\x00" not in response.headers["x-correlation-id"] and "\x85" not in response.headers["x-request-id"]
    [event] = [e.event for e in container.store.read_all(after=before, limit=10) if e.event.actor == "user:alice"]
    assert event.metadata["correlation_id"] == response.headers["x-correlation-id"]
    assert read_models_current(container)


# -- dates ------------------------------------------------------------------------------------
def test_a_booking_at_the_end_of_time_is_422_not_a_500(app: Client) -> None:
    refused(app, "POST", f"{API}/instances", 422, "timeslot_start", role="user",
            json=booking(timeslot_start="9999-12-31T23:59:00Z", duration_minutes=30))
    refused(app, "POST", f"{API}/instances", 422, "timeslot_end", role="user",
            json=booking(timeslot_end="9999-12-31T23:59:00Z"))


@pytest.mark.parametrize("path", ["/capacity", "/reservations"])
def test_a_window_from_year_one_to_year_9999_is_422_not_a_500(app: Client, path: str) -> None:
    client, container = app
    worker_id = running_worker(client, container)
    reserve(container, worker_id, "LabletInstance-held", NOW, 2)  # the ledger has something to sweep
    params = {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z", **caught_up(container)}
    refused(app, "GET", f"{API}{path}", 422, "query.from", role="instructor", params=params)
    params = {"from": "2026-11-28T00:00:00Z", "to": "9999-12-31T00:00:00Z", **caught_up(container)}
    refused(app, "GET", f"{API}{path}", 422, "query.to", role="instructor", params=params)
    wide = {"from": "2000-01-01T00:00:00Z", "to": "2099-12-31T00:00:00Z", **caught_up(container)}
    assert client.get(f"{API}{path}", params=wide, headers=AUTH["instructor"]).status_code == 200


@pytest.mark.parametrize("value", [1790000000, 1790000000.5, "1790000000", "2026-12-01", "2026-12-01T10:00:00",
                                   "-255", "2026-12-01T10:00:00 +00:00", True])
def test_times_are_rfc_3339_strings_with_an_offset_only(app: Client, value: Any) -> None:
    refused(app, "POST", f"{API}/instances", 422, "timeslot_start", role="user",
            json=booking(timeslot_start=value, duration_minutes=30))


def test_reservations_from_minus_255_is_refused(app: Client) -> None:
    refused(app, "GET", f"{API}/reservations?from=-255", 422, "query.from", role="instructor")
    refused(app, "GET", f"{API}/instances?from=-255", 422, "query.from", role="instructor")


def test_a_one_microsecond_booking_is_refused(app: Client) -> None:
    start = NOW + timedelta(days=1)
    refused(app, "POST", f"{API}/instances", 422, "timeslot_end", role="user",
            json=booking(timeslot_start=start.isoformat(),
                         timeslot_end=(start + timedelta(microseconds=1)).isoformat()))
    client, _ = app
    one_minute = booking(timeslot_start=start.isoformat(), timeslot_end=(start + timedelta(minutes=1)).isoformat())
    assert client.post(f"{API}/instances", json=one_minute, headers=AUTH["user"]).status_code == 201


# -- YAML and JSON depth, tags ------------------------------------------------------------------
def test_a_lab_yaml_nesting_50_000_flow_sequences_is_refused(app: Client) -> None:
    body = refused(app, "POST", f"{API}/definitions", 422, "lab_yaml",
                   json=definition_body(name="deep-yaml", lab_yaml="[" * 50_000 + "]" * 50_000))
    assert "deeper than" in body["detail"]


def test_a_lab_yaml_nesting_50_000_block_sequences_is_refused(app: Client) -> None:
    refused(app, "POST", f"{API}/definitions", 422, "lab_yaml",
            json=definition_body(name="deep-block", lab_yaml="- " * 50_000 + "x\n"))


@pytest.mark.parametrize("tagged", ["!!python/object/apply:os.system ['echo owned']", "!custom x",
                                    "!!binary aGVsbG8="])
def test_a_lab_yaml_with_an_unknown_tag_is_refused(app: Client, tagged: str) -> None:
    yaml = definition_body()["lab_yaml"].replace("lab:\n", f"lab:\n  notes: {tagged}\n", 1)
    body = refused(app, "POST", f"{API}/definitions", 422, "lab_yaml", json=definition_body(name="tagged", lab_yaml=yaml))
    assert "tag" in body["detail"]


def test_a_cloudevent_whose_data_nests_50_000_arrays_is_refused(app: Client) -> None:
    text = ('{"specversion":"1.0","id":"deep-1","source":"urn:lds","type":"lds.session.started","data":'
            + "[" * 50_000 + "]" * 50_000 + "}")
    refused(app, "POST", f"{API}/cloudevents", 400, None, role="service", content=text,
            headers={"content-type": "application/cloudevents+json"})


def test_a_cloudevent_data_deeper_than_the_limit_is_refused(app: Client) -> None:
    data: Any = "leaf"
    for _ in range(40):  # parses fine, but deeper than any event we read
        data = [data]
    event = {"specversion": "1.0", "id": "deep-2", "source": "urn:lds", "type": "lds.session.started", "data": data}
    body = refused(app, "POST", f"{API}/cloudevents", 400, None, role="service", content=json.dumps(event),
                   headers={"content-type": "application/cloudevents+json"})
    assert "deeper than" in body["reason"]


def test_after_all_that_a_plain_booking_still_works_and_is_read_back(app: Client) -> None:
    client, container = app
    accepted = client.post(f"{API}/instances", json=booking(duration_minutes=30), headers=AUTH["user"]).json()
    response = client.get(f"{API}/instances/{accepted['id']}", params=caught_up(container), headers=AUTH["user"])
    assert response.status_code == 200 and response.json()["owner_id"] == "alice"
