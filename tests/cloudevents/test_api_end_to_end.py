"""CloudEvents through the running system, with a real HTTP receiver (uvicorn in the test):

a grader subscribes over the API, receives signed CloudEvents for an instance's whole life
in order, sends its grading result back (which completes the instance), reads the delivery
log (every attempt), replays, and a slow receiver never holds up commands.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from api.container import Container
from domain.base import event_id
from domain.instance import LabletInstance
from tests.api.test_instances_support import (
    API,
    AUTH,
    bring_up,
    instance_client,
    place,
    request_instance,
    running_worker,
    system_ctx,
)
from tests.cloudevents.api_support import GRADER, LDS, LOCAL_RECEIVERS, SCORE, post_structured, structured

INSTANCE_TYPES = "ccm.lablet.instance.*"


@pytest.fixture
def app(tmp_path: Path):
    with instance_client(tmp_path, **LOCAL_RECEIVERS) as pair:
        yield pair


def controller(container: Container, instance_id: str, *commands: str) -> None:
    """Play the instance controller for the steps that are not CloudEvents."""
    for command in commands:
        ctx = system_ctx(container, "system:instance-controller")
        instance: LabletInstance = container.store.get(instance_id)
        if command == "grade":
            instance.start_grading({"session_id": "grading-1", "grader": GRADER}, ctx)
        elif command == "stopped":
            instance.mark_stopped(ctx)
        elif command == "archive":
            instance.archive(ctx)
        elif command == "terminate":
            instance.terminate(None, ctx)
        container.store.save(instance)


def subscribe(client: TestClient, url: str, **body) -> dict:  # noqa: ANN003
    answer = client.post(f"{API}/subscriptions", json={"url": url, **body}, headers=AUTH["grader"])
    assert answer.status_code == 201, answer.text
    return answer.json()


def stream_event_ids(container: Container, stream_id: str) -> list[str]:
    return [str(s.event.event_id) for s in container.store.read_stream(stream_id)]


def test_a_grader_follows_a_whole_life_and_grades_it(app, receiver):
    client, container = app
    sub = subscribe(client, receiver.url("/grader"), types=[INSTANCE_TYPES])
    worker_id = running_worker(client, container)

    instance_id = request_instance(client, "service", owner_id="alice")["id"]
    # The receiver fails the first delivery of the instance's second event once: it is retried.
    receiver.respond(str(event_id(instance_id, 1)), ("retry-after", 503, "0"))
    place(container, instance_id, worker_id)
    bring_up(container, instance_id)
    started = structured("lds.session.started", source=LDS, subject=instance_id, data={"session_id": "s-1"})
    assert post_structured(client, started).status_code == 202
    ended = structured("lds.session.ended", source=LDS, subject=instance_id)
    assert post_structured(client, ended).status_code == 202
    controller(container, instance_id, "grade")

    # The grader waits for grading.started, then answers with its result.
    grading_started = str(event_id(instance_id, len(stream_event_ids(container, instance_id)) - 1))
    receiver.wait_for(lambda: any(r.headers.get("webhook-id") == grading_started for r in receiver.ok()))
    result = structured("grading.session.completed", source=GRADER, subject=instance_id,
                        data={"score_report": SCORE})
    answer = post_structured(client, result, auth="grader")
    assert answer.status_code == 202 and answer.json()["results"][0]["result"] == "accepted"
    controller(container, instance_id, "stopped", "archive", "terminate")
    assert container.store.get(instance_id).state.value == "TERMINATED"

    expected = stream_event_ids(container, instance_id)
    receiver.wait_for(lambda: {r.headers["webhook-id"] for r in receiver.ok()} >= set(expected))

    # Signed (verified with the reference library), structured, in stream order, nothing else.
    verifier = Webhook(sub["secret"])
    received = []
    for r in receiver.ok():
        event = verifier.verify(r.body, r.headers)
        assert r.headers["content-type"].startswith("application/cloudevents+json")
        assert event["id"] == r.headers["webhook-id"] and event["type"].startswith("ccm.lablet.instance.")
        received.append(event)
    assert [e["id"] for e in received] == expected
    assert [int(e["sequence"]) for e in received] == list(range(len(expected)))
    types = [e["type"] for e in received]
    assert types[0] == "ccm.lablet.instance.requested" and "ccm.lablet.instance.scheduled" in types
    assert types[-4:] == ["ccm.lablet.instance.grading.completed", "ccm.lablet.instance.stopped",
                          "ccm.lablet.instance.archived", "ccm.lablet.instance.terminated"]
    completed = next(e for e in received if e["type"] == "ccm.lablet.instance.grading.completed")
    assert completed["causationid"] == result["id"] and completed["data"]["score_report"]["score"] == 42
    assert completed["actor"] == "grader:grader" and completed["subject"] == instance_id

    # The delivery log shows every attempt, the failed one first.
    log = client.get(f"{API}/subscriptions/{sub['id']}/deliveries", params={"limit": 500},
                     headers=AUTH["grader"]).json()["items"]
    second = [a for a in reversed(log) if a["event_id"] == expected[1]]
    assert [(a["status"], a["outcome"]) for a in second] == [(503, "retry"), (200, "delivered")]
    assert sorted({a["event_id"] for a in log if a["outcome"] == "delivered"}) == sorted(expected)
    assert all(a["latency_ms"] >= 0 and a["at"] for a in log)
    assert len(log) == len(expected) + 1

    # Replay from the start: everything again, same ids and bytes, in order per subject.
    bodies = {r.headers["webhook-id"]: r.body for r in receiver.ok()}
    receiver.reset()
    replay = client.post(f"{API}/subscriptions/{sub['id']}/replay", json={"from_position": 0},
                         headers=AUTH["grader"])
    assert replay.status_code == 202
    receiver.wait_for(lambda: {r.headers["webhook-id"] for r in receiver.ok()} >= set(expected))
    again = [r for r in receiver.ok() if r.headers["webhook-id"] in bodies]
    assert [r.headers["webhook-id"] for r in again] == expected
    assert all(r.body == bodies[r.headers["webhook-id"]] for r in again)

    # The grader's result sent again (its retry) changes nothing.
    again = post_structured(client, result, auth="grader").json()["results"][0]
    assert again["result"] == "duplicate"
    assert stream_event_ids(container, instance_id) == expected


def test_dead_letters_are_listed_and_redelivered(app, receiver):
    client, container = app
    sub = subscribe(client, receiver.url("/strict"), types=["ccm.worker.*"], mode="binary")
    receiver.default = 400  # refuses everything: not retryable, dead-lettered at once
    worker_id = running_worker(client, container)  # requested, provisioning started, ready
    expected = stream_event_ids(container, worker_id)
    url = f"{API}/subscriptions/{sub['id']}/dead-letters"

    def dead_letters() -> list[dict]:
        return client.get(url, headers=AUTH["grader"]).json()["items"]

    receiver.wait_for(lambda: len(dead_letters()) == len(expected))
    dead = dead_letters()
    assert [(d["event_id"], d["attempts"]) for d in dead] == [(e, 1) for e in expected]
    assert dead[0]["type"] == "ccm.worker.requested" and "HTTP 400" in dead[0]["reason"]
    page = client.get(url, params={"limit": 2}, headers=AUTH["grader"]).json()
    rest = client.get(url, params={"cursor": page["next_cursor"]}, headers=AUTH["grader"]).json()
    assert [d["event_id"] for d in page["items"] + rest["items"]] == expected and rest["next_cursor"] is None

    receiver.default = 200  # the receiver was fixed
    refused = expected[0]
    assert client.post(f"{url}/{refused}/redeliver", headers=AUTH["grader"]).status_code == 202
    receiver.wait_for(lambda: any(r.headers.get("webhook-id") == refused for r in receiver.ok()))
    receiver.wait_for(lambda: [d["event_id"] for d in dead_letters()] == expected[1:])
    binary = next(r for r in receiver.ok() if r.headers["webhook-id"] == refused)
    assert binary.headers["ce-type"] == "ccm.worker.requested" and json.loads(binary.body)["template_name"]
    Webhook(sub["secret"]).verify(binary.body, binary.headers)


def test_a_slow_receiver_does_not_hold_up_commands(app, receiver):
    client, container = app
    subscribe(client, receiver.url("/slow"))  # every event
    receiver.gate = threading.Event()  # the receiver holds every request until the gate opens
    try:
        first = request_instance(client, "service", owner_id="alice")
        receiver.wait_for(lambda: receiver.held > 0)  # a delivery is now stuck in the receiver
        # Commands still complete while it is stuck (a blocked command would hang the test).
        more = [request_instance(client, "service", owner_id=f"user-{i}") for i in range(3)]
        assert receiver.held >= 1 and not receiver.ok()  # nothing was answered meanwhile
    finally:
        receiver.gate.set()
    expected = {str(event_id(i["id"], 0)) for i in (first, *more)}
    receiver.wait_for(lambda: {r.headers["webhook-id"] for r in receiver.ok()} >= expected)
    assert container.store.get(first["id"]).state.value in {"PENDING", "SCHEDULED"}


def test_a_410_disables_the_subscription_for_good(app, receiver):
    client, container = app
    sub = subscribe(client, receiver.url("/gone"), types=["ccm.worker.*"])
    receiver.default = 410
    running_worker(client, container)
    url = f"{API}/subscriptions/{sub['id']}"

    def doc() -> dict:
        return client.get(url, params={"min_position": container.store.max_position()},
                          headers=AUTH["grader"]).json()

    receiver.wait_for(lambda: doc()["enabled"] is False)
    assert "410" in doc()["disabled_reason"]
    names = [s.event_name for s in container.store.read_stream(sub["id"])]
    assert names == ["SubscriptionCreated", "SubscriptionDisabled"]
    assert container.store.read_stream(sub["id"])[-1].event.actor == "system:webhook-dispatcher"
    receiver.wait_for(lambda: sub["id"] not in container.webhooks.delivering())
    assert len(receiver.requests) == 1  # stopped at the first answer


def test_delivery_resumes_from_its_checkpoint_after_a_restart(tmp_path, receiver):
    with instance_client(tmp_path, **LOCAL_RECEIVERS) as (client, container):
        sub = subscribe(client, receiver.url("/restart"), types=["ccm.worker.*"])
        first = running_worker(client, container)
        before = set(stream_event_ids(container, first))
        receiver.wait_for(lambda: {r.headers["webhook-id"] for r in receiver.ok()} >= before)
    receiver.reset()
    # The next process knows the subscription from the log and goes on from its checkpoint.
    with instance_client(tmp_path, **LOCAL_RECEIVERS) as (client, container):
        assert sub["id"] in container.webhooks.delivering()
        second = running_worker(client, container)
        after = set(stream_event_ids(container, second))
        receiver.wait_for(lambda: {r.headers["webhook-id"] for r in receiver.ok()} >= after)
        assert not {r.headers["webhook-id"] for r in receiver.ok()} & before  # nothing re-sent


def test_a_receiver_sees_its_own_subscription_events_only(app, receiver):
    client, container = app
    mine = subscribe(client, receiver.url("/all"))  # no filter: every type
    theirs = client.post(f"{API}/subscriptions", json={"url": receiver.url("/other-receiver")},
                         headers=AUTH["admin"]).json()
    replay = client.post(f"{API}/subscriptions/{mine['id']}/replay", json={"from_position": mine["position"]},
                         headers=AUTH["grader"])
    assert replay.status_code == 202
    own = str(event_id(mine["id"], 1))  # the replay request, delivered to its own subscriber
    receiver.wait_for(lambda: any(r.headers["webhook-id"] == own for r in receiver.ok()))
    subjects = {json.loads(r.body)["subject"] for r in receiver.ok()}
    assert theirs["id"] not in subjects and "/other-receiver" not in b"".join(r.body for r in receiver.ok()).decode()
