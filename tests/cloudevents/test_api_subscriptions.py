"""``/api/v1/subscriptions``: create (secret shown once), list, read, delete, replay, owners."""

from __future__ import annotations

import pytest

from domain.subscription import secret_key
from tests.cloudevents.api_support import API, AUTH, started_app

HOOK = "<the test receiver>"  # replaced by the receiver's URL (``hooked``)
URL: list[str] = []  # the receiver's URL, set by the fixtures


@pytest.fixture
def app(tmp_path, _receiver_server):
    URL[:] = [_receiver_server.url("/hooks/lrm")]
    with started_app(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory, _receiver_server):
    """One app for the tests that only check refusals (each compares positions before and after)."""
    URL[:] = [_receiver_server.url("/hooks/lrm")]
    with started_app(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def hooked(body: dict) -> dict:
    return {k: (URL[0] if v == HOOK else v) for k, v in body.items()}


def subscribe(client, auth="grader", **body):  # noqa: ANN001, ANN201
    return client.post(f"{API}/subscriptions", json=hooked({"url": HOOK, **body}), headers=AUTH[auth])


def test_create_answers_the_secret_once_and_never_again(app):
    client, container = app
    answer = subscribe(client, types=["ccm.lablet.instance.*"], subjects=["LabletInstance-*"], mode="binary")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["secret"].startswith("whsec_") and len(secret_key(created["secret"])) == 32
    assert created["owner"] == "grader:grader" and created["mode"] == "binary"

    read = client.get(f"{API}/subscriptions/{created['id']}", params={"min_position": created["position"]},
                      headers=AUTH["grader"])
    assert read.status_code == 200
    assert read.json()["types"] == ["ccm.lablet.instance.*"] and read.json()["enabled"] is True
    listed = client.get(f"{API}/subscriptions", headers=AUTH["grader"]).json()
    timeline = [s.event.payload() for s in container.store.read_stream(created["id"])]
    for shown in (read.text, str(listed), str(timeline)):
        assert created["secret"] not in shown and "secret" not in shown


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": "ftp://x.example/h"}, 422),
        ({"url": "not a url"}, 422),
        ({"url": HOOK, "types": ["Not A Type"]}, 422),
        ({"url": HOOK, "mode": "carrier-pigeon"}, 422),
        ({"url": HOOK, "types": [f"ccm.t{i}" for i in range(51)]}, 422),
        ({"url": HOOK, "secret": "whsec_mine"}, 422),
        ({"types": ["ccm.worker.*"]}, 422),
    ],
    ids=["scheme", "not-url", "type", "mode", "too-many-filters", "caller-secret", "no-url"],
)
def test_invalid_subscriptions_are_refused(shared, body, status):
    client, container = shared
    before = container.store.max_position()
    answer = client.post(f"{API}/subscriptions", json=hooked(body), headers=AUTH["grader"])
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert container.store.max_position() == before


@pytest.mark.parametrize(("auth", "status"), [(None, 401), ("user", 403), ("service", 403), ("instructor", 403)])
def test_only_graders_and_admins_manage_subscriptions(shared, auth, status):
    client, _ = shared
    headers = AUTH[auth] if auth else {}
    assert client.post(f"{API}/subscriptions", json={"url": URL[0]}, headers=headers).status_code == status
    assert client.get(f"{API}/subscriptions", headers=headers).status_code == status


def test_graders_see_their_own_admins_see_all(app):
    client, container = app
    mine = subscribe(client).json()
    theirs = subscribe(client, auth="grader2").json()
    wait = {"min_position": container.store.max_position()}

    def ids(auth):  # noqa: ANN001, ANN202
        return {s["id"] for s in client.get(f"{API}/subscriptions", params=wait, headers=AUTH[auth]).json()["items"]}

    assert ids("grader") == {mine["id"]}
    assert ids("grader2") == {theirs["id"]}
    assert ids("admin") == {mine["id"], theirs["id"]}
    for path in ("", "/deliveries", "/dead-letters"):
        assert client.get(f"{API}/subscriptions/{theirs['id']}{path}", params=wait,
                          headers=AUTH["grader"]).status_code == 404
    assert client.delete(f"{API}/subscriptions/{theirs['id']}", headers=AUTH["grader"]).status_code == 404
    assert client.post(f"{API}/subscriptions/{theirs['id']}/replay", json={"from_position": 0},
                       headers=AUTH["grader"]).status_code == 404
    assert client.delete(f"{API}/subscriptions/{theirs['id']}", headers=AUTH["admin"]).status_code == 202


def test_delete_replay_disable_enable_are_events(app):
    client, container = app
    created = subscribe(client).json()
    sid = created["id"]
    assert client.post(f"{API}/subscriptions/{sid}/replay", json={"from_position": 0},
                       headers=AUTH["grader"]).status_code == 202
    assert client.post(f"{API}/subscriptions/{sid}/replay", json={"from_position": -1},
                       headers=AUTH["grader"]).status_code == 422
    assert client.post(f"{API}/subscriptions/{sid}/disable", json={"reason": "maintenance"},
                       headers=AUTH["grader"]).status_code == 202
    position = client.post(f"{API}/subscriptions/{sid}/enable", headers=AUTH["grader"]).json()["position"]
    doc = client.get(f"{API}/subscriptions/{sid}", params={"min_position": position}, headers=AUTH["grader"]).json()
    assert doc["enabled"] is True and doc["last_replay_from"] == 0

    position = client.delete(f"{API}/subscriptions/{sid}", headers=AUTH["grader"]).json()["position"]
    listed = client.get(f"{API}/subscriptions", params={"min_position": position}, headers=AUTH["grader"]).json()
    assert listed["items"] == []
    names = [s.event_name for s in container.store.read_stream(sid)]
    assert names == ["SubscriptionCreated", "SubscriptionReplayRequested", "SubscriptionDisabled",
                     "SubscriptionEnabled", "SubscriptionDeleted"]
    # A deleted subscription takes no more commands.
    assert client.post(f"{API}/subscriptions/{sid}/replay", json={"from_position": 0},
                       headers=AUTH["grader"]).status_code == 409


def test_unknown_ids_and_dead_letters_are_404(app):
    client, _ = app
    assert client.get(f"{API}/subscriptions/WebhookSubscription-nope", headers=AUTH["admin"]).status_code == 404
    assert client.delete(f"{API}/subscriptions/Worker-1", headers=AUTH["admin"]).status_code == 404
    sid = subscribe(client).json()["id"]
    answer = client.post(f"{API}/subscriptions/{sid}/dead-letters/no-such-event/redeliver", headers=AUTH["grader"])
    assert answer.status_code == 404


def test_list_pages_with_a_cursor(app):
    client, container = app
    created = {subscribe(client).json()["id"] for _ in range(5)}
    params = {"min_position": container.store.max_position(), "limit": 2}
    seen, cursor = [], None
    while True:
        page = client.get(f"{API}/subscriptions", params={**params, **({"cursor": cursor} if cursor else {})},
                          headers=AUTH["grader"]).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(created)
    bad = client.get(f"{API}/subscriptions", params={"cursor": "garbage"}, headers=AUTH["grader"])
    assert bad.status_code == 422


def test_overlong_filters_are_422_not_500(app):
    client, _ = app
    for field in ("types", "subjects"):
        answer = client.post(f"{API}/subscriptions", json={"url": URL[0], field: ["a" * 201]}, headers=AUTH["grader"])
        assert answer.status_code == 422, answer.text


def test_out_of_range_positions_and_cursors_are_422(app):
    client, _ = app
    sid = subscribe(client).json()["id"]
    huge = client.post(f"{API}/subscriptions/{sid}/replay", json={"from_position": 2**64}, headers=AUTH["grader"])
    assert huge.status_code == 422
    from projections.readmodel import encode_cursor

    for path in ("deliveries", "dead-letters"):
        for cursor in (encode_cursor(2**70, "x"), encode_cursor("abc", "x"), "garbage"):
            answer = client.get(f"{API}/subscriptions/{sid}/{path}", params={"cursor": cursor}, headers=AUTH["grader"])
            assert answer.status_code == 422, (path, cursor, answer.text)
