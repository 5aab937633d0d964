"""``/scheduling/decisions`` and ``/scheduling/queue`` on a real app (SQLite, virtual clock;
the container's scheduler is driven by the test)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from tests.scheduler.support import T0, new_instance, new_worker, requirements, template

TOKENS = "admin:adm,instructor:ins,user:usr:alice,user:usr2:bob,grader:grd,service:svc:exam"
AUTH = {name: {"Authorization": f"Bearer {token}"}
        for name, token in [("admin", "adm"), ("instructor", "ins"), ("alice", "usr"), ("bob", "usr2"),
                            ("service", "svc")]}
URL = "/api/v1/scheduling"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Container, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("api"), store="sqlite", tokens=TOKENS,
                        worker_templates_file=Path("/nonexistent"))
    container = Container(settings, clock=VirtualClock(T0))
    with TestClient(create_app(container)) as client:
        store = container.store
        store.save(new_worker(template(cpu=4, memory=16)))
        placed = new_instance(T0 + timedelta(hours=1), req=requirements(cpu=4, memory=16), owner="alice")
        queued = new_instance(T0 + timedelta(hours=1), req=requirements(cpu=4, memory=16), owner="alice")
        bobs = new_instance(T0 + timedelta(hours=4), req=requirements(cpu=2, memory=8), owner="bob")
        store.save(placed)
        store.save(queued)
        store.save(bobs)
        container.scheduler.run_until_idle()
        yield client, container, {"placed": placed.id, "queued": queued.id, "bobs": bobs.id}


def get(client: TestClient, container: Container, path: str, who: str, **params: object) -> dict:
    response = client.get(f"{URL}/{path}", headers=AUTH[who],
                          params={"min_position": container.store.max_position(), **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_instances_decisions_say_where_it_went_and_why_not(app: tuple[TestClient, Container, dict]) -> None:
    client, container, ids = app
    placed = get(client, container, "decisions", "instructor", instance_id=ids["placed"])["items"]
    assert [(d["event"], d["outcome"]) for d in placed] == [("PlacementDecided", "placed")]
    assert placed[0]["worker_id"] == placed[0]["decision"]["chosen_worker_id"]
    queued = get(client, container, "decisions", "alice", instance_id=ids["queued"])["items"]
    assert [(d["event"], d["outcome"]) for d in queued] == [("PlacementFailed", "unplaceable")]
    assert "ResourcesOverWindow" in queued[0]["summary"]
    assert queued[0]["decision"]["rejections"]


def test_all_decisions_newest_first_and_users_see_only_their_own(app: tuple[TestClient, Container, dict]) -> None:
    client, container, ids = app
    everything = get(client, container, "decisions", "admin")["items"]
    assert len(everything) == 3
    assert [d["position"] for d in everything] == sorted((d["position"] for d in everything), reverse=True)
    alices = get(client, container, "decisions", "alice")["items"]
    assert {d["instance_id"] for d in alices} == {ids["placed"], ids["queued"]}
    failed = get(client, container, "decisions", "admin", outcome="unplaceable")["items"]
    assert [d["instance_id"] for d in failed] == [ids["queued"]]
    page = get(client, container, "decisions", "admin", limit=2)
    rest = get(client, container, "decisions", "admin", limit=2, cursor=page["next_cursor"])
    assert [d["decision_id"] for d in page["items"] + rest["items"]] == [d["decision_id"] for d in everything]


def test_the_queue_lists_pending_instances_with_why(app: tuple[TestClient, Container, dict]) -> None:
    client, container, ids = app
    queue = get(client, container, "queue", "instructor")["items"]
    assert [q["instance_id"] for q in queue] == [ids["queued"]]
    assert queue[0]["last_failure"].startswith("no worker fits")
    assert get(client, container, "queue", "bob")["items"] == []


@pytest.mark.parametrize(("who", "status"), [("bob", 404), ("service", 403)])
def test_other_peoples_decisions_are_not_shown(app: tuple[TestClient, Container, dict], who: str, status: int) -> None:
    client, _, ids = app
    response = client.get(f"{URL}/decisions", headers=AUTH[who], params={"instance_id": ids["placed"]})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_foreign_cursor_is_refused(app: tuple[TestClient, Container, dict]) -> None:
    client, _, _ = app
    response = client.get(f"{URL}/queue", headers=AUTH["admin"], params={"cursor": "not-ours"})
    assert response.status_code == 422
