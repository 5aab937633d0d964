"""``POST /api/v1/cloudevents``: modes, auth, matching, transitions, problems, dedup."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from domain.instance import LabletInstance
from tests.cloudevents.api_support import (
    API,
    AUTH,
    BATCH,
    GRADER,
    LDS,
    SCORE,
    post_structured,
    ready_instance,
    request_instance,
    started_app,
    state_of,
    step,
    structured,
)


@pytest.fixture
def app(tmp_path):
    with started_app(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One app for the tests that only check refusals (each compares positions before and after)."""
    with started_app(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def test_login_by_user_session_then_collect_by_subject_in_binary_mode(app):
    client, container = app
    instance_id = ready_instance(container, session_id="lds-42")

    answer = post_structured(client, structured("lds.session.started", data={"session_id": "lds-42"}))
    assert answer.status_code == 202, answer.text
    [result] = answer.json()["results"]
    assert result["result"] == "accepted" and result["instance_id"] == instance_id
    assert answer.json()["mode"] == "structured" and answer.json()["position"] == result["position"]
    assert state_of(container, instance_id) == "RUNNING"

    binary = {"ce-specversion": "1.0", "ce-id": "end-1", "ce-source": LDS, "ce-type": "lds.session.ended",
              "ce-subject": instance_id, "content-type": "application/json", **AUTH["service"]}
    answer = client.post(f"{API}/cloudevents", content=b'{"reason": "user left"}', headers=binary)
    assert answer.status_code == 202, answer.text
    assert answer.json()["mode"] == "binary" and answer.json()["results"][0]["result"] == "accepted"
    assert state_of(container, instance_id) == "COLLECTING"


def test_the_cloudevent_id_is_the_causation_of_what_it_caused(app):
    client, container = app
    instance_id = ready_instance(container)
    event = structured("lds.session.started", subject=instance_id, correlationid="exam-7")
    assert post_structured(client, event).status_code == 202
    last = container.store.read_stream(instance_id)[-1].event
    assert isinstance(last, LabletInstance.UserLoggedIn)
    assert last.metadata["causation_id"] == event["id"]
    assert last.metadata["correlation_id"] == "exam-7"
    assert last.metadata["actor"] == "service:exam"
    assert last.source == "lds"


def test_grader_completes_and_fails_grading(app):
    client, container = app
    graded, failed = ready_instance(container), ready_instance(container, session_id="lds-2")
    step(container, graded, "collect", "grading")
    step(container, failed, "collect", "grading", session_id="lds-2")

    done = structured("grading.session.completed", source=GRADER, data={"instance_id": graded, "score_report": SCORE})
    assert post_structured(client, done, auth="grader").status_code == 202
    instance = container.store.get(graded)
    assert instance.state.value == "STOPPING" and instance.score_report.score == 42

    # By the grading session recorded at GRADING, report fields at the top of data.
    oops = structured("grading.session.failed", source=GRADER,
                      data={"grading_session_id": "grading-lds-2", "reason": "grader crashed"})
    assert post_structured(client, oops, auth="grader").status_code == 202
    instance = container.store.get(failed)
    assert instance.state.value == "STOPPING" and instance.last_error == "grader crashed"


def test_session_end_without_grading_stops_the_lab(app):
    client, container = app
    instance_id = ready_instance(container, grading=False)
    assert post_structured(client, structured("lds.session.ended", subject=instance_id)).status_code == 202
    assert state_of(container, instance_id) == "STOPPING"


@pytest.mark.parametrize(
    "event",
    [
        structured("lds.session.started", subject=f"LabletInstance-{uuid4()}"),
        structured("lds.session.started", data={"session_id": "nobody-has-this"}),
        structured("lds.session.started", subject="something-else"),
        structured("lds.session.started"),
        structured("com.example.unrelated", subject="x"),
    ],
    ids=["unknown-instance", "unknown-session", "foreign-subject", "no-reference", "unhandled-type"],
)
def test_events_for_nothing_we_know_are_accepted_and_ignored(shared, event):
    client, container = shared
    before = container.store.max_position()
    answer = post_structured(client, event)
    assert answer.status_code == 202, answer.text
    assert answer.json()["results"][0]["result"] == "ignored"
    assert container.store.max_position() == before


def test_wrong_state_is_a_409_problem_and_records_nothing(app):
    client, container = app
    instance_id = request_instance(container)  # PENDING: no login possible
    before = container.store.max_position()
    answer = post_structured(client, structured("lds.session.started", subject=instance_id))
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["state"] == "PENDING"
    assert container.store.max_position() == before


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [
        ({"content-type": "application/cloudevents+json"}, b"{not json", 400, "body"),
        ({"content-type": "application/cloudevents+json"},
         json.dumps({"specversion": "1.0", "source": LDS, "type": "lds.session.started"}).encode(), 400, "id"),
        ({"content-type": "application/json"}, b"{}", 400, "specversion"),
        ({"content-type": "application/cloudevents-batch+json"}, b'{"not": "an array"}', 400, "body"),
        ({"content-type": "application/cloudevents+json"},
         json.dumps({"specversion": "1.0", "id": "x", "source": LDS, "type": "t",
                     "data": "a" * 70_000}).encode(), 413, "body"),
    ],
    ids=["bad-json", "missing-id", "binary-without-ce-headers", "batch-not-array", "too-large"],
)
def test_malformed_requests_get_problems(shared, headers, body, status, field):
    client, _ = shared
    answer = client.post(f"{API}/cloudevents", content=body, headers={**headers, **AUTH["service"]})
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field


def test_unusable_grading_data_is_a_400_problem(app):
    client, container = app
    instance_id = ready_instance(container)
    step(container, instance_id, "collect", "grading")
    bad = structured("grading.session.completed", source=GRADER, subject=instance_id,
                     data={"score": 60, "max_score": 50, "cut_score": 30, "passed": True})
    answer = post_structured(client, bad, auth="grader")
    assert answer.status_code == 400 and answer.json()["title"] == "Malformed CloudEvent"
    assert state_of(container, instance_id) == "GRADING"


@pytest.mark.parametrize(("auth", "status"), [(None, 401), ("user", 403), ("instructor", 403)])
def test_only_graders_services_and_admins_may_send(shared, auth, status):
    client, _ = shared
    headers = {"content-type": "application/cloudevents+json", **(AUTH[auth] if auth else {})}
    answer = client.post(f"{API}/cloudevents", content=json.dumps(structured("x.y")), headers=headers)
    assert answer.status_code == status


def test_batch_reports_each_event_on_its_own(app):
    client, container = app
    ready = ready_instance(container)
    pending = request_instance(container)
    events = [
        structured("lds.session.started", subject=ready),
        structured("lds.session.started", subject=pending),
        structured("lds.session.started", subject=f"LabletInstance-{uuid4()}"),
    ]
    answer = client.post(f"{API}/cloudevents", content=json.dumps(events), headers={**BATCH, **AUTH["service"]})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["mode"] == "batch"
    assert [r["result"] for r in body["results"]] == ["accepted", "rejected", "ignored"]
    assert body["results"][1]["problem"]["status"] == 409
    assert state_of(container, ready) == "RUNNING" and state_of(container, pending) == "PENDING"
    empty = client.post(f"{API}/cloudevents", content=b"[]", headers={**BATCH, **AUTH["service"]})
    assert empty.status_code == 202 and empty.json()["results"] == []


def test_dedup_by_source_and_id_survives_a_restart(tmp_path):
    event = structured("grading.session.completed", id_="grade-1", source=GRADER, data={"score_report": SCORE})
    with started_app(tmp_path) as (client, container):
        instance_id = ready_instance(container)
        step(container, instance_id, "collect", "grading")
        event["subject"] = instance_id
        first = post_structured(client, event, auth="grader").json()["results"][0]
        again = post_structured(client, event, auth="grader").json()["results"][0]
        assert (first["result"], again["result"]) == ("accepted", "duplicate")
        assert again["position"] == first["position"]
        # Same id from another source is another event (here: refused, the lab is STOPPING).
        other = post_structured(client, {**event, "source": "urn:grader:other"}, auth="grader")
        assert other.status_code == 409
    with started_app(tmp_path) as (client, container):
        answer = post_structured(client, event, auth="grader")
        assert answer.status_code == 202 and answer.json()["results"][0]["result"] == "duplicate"
        completed = [s for s in container.store.read_stream(instance_id)
                     if isinstance(s.event, LabletInstance.GradingCompleted)]
        assert len(completed) == 1


def test_an_effect_recorded_before_a_crash_is_not_repeated(app):
    """A crash between the save and the inbox write leaves only the claim: the stream knows."""
    client, container = app
    instance_id = ready_instance(container)
    step(container, instance_id, "collect", "grading")
    event = structured("grading.session.completed", source=GRADER, subject=instance_id, data=SCORE)
    assert post_structured(client, event, auth="grader").status_code == 202
    head = container.store.max_position()
    with container.read_models.transaction() as tx:
        from processors.commands.cloudevents import INBOX, inbox_key

        key = inbox_key(GRADER, event["id"])
        tx.put(INBOX.name, key, {**tx.get(INBOX.name, key), "result": "claimed", "position": None})
    answer = post_structured(client, event, auth="grader")
    assert answer.status_code == 202 and answer.json()["results"][0]["result"] == "duplicate"
    assert container.store.max_position() == head
