"""``DELETE /api/v1/people/{owner_id}``: forget a person (GDPR erasure) on a running app.

After it, no stored event, read model or rebuild holds the identity in clear; the person's
labs still count (same instances, same timeline events), and other people are unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from tests.api.test_instances_support import (
    API,
    AUTH,
    assert_problem,
    caught_up,
    instance_client,
    request_instance,
)

Client = tuple[TestClient, Container]
ALICE = "alice"  # the user token's subject (tests/api/test_templates_support.py)
CAROL = "carol.unique-person@example.org"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        yield pair


def read_model_text(container: Container) -> str:
    """Every document of every read model, as JSON text."""
    docs = []
    for projection in container.projection_runner.projections:
        for table in projection.tables:
            page = container.read_models.query(table.name, limit=10_000)
            docs.extend(page.items)
    return json.dumps(docs)


def stored_bytes(container: Container) -> bytes:
    return b"".join(bytes(n.state) for n in container.store.app.recorder.select_notifications(start=0, limit=100_000))


def forget(client: TestClient, container: Container, owner_id: str) -> dict:
    response = client.delete(f"{API}/people/{owner_id}", headers=AUTH["admin"])
    assert response.status_code == 202, response.text
    assert container.read_model_rebuild.wait_idle(30)
    return response.json()


def test_forgetting_a_person_erases_them_from_events_read_models_and_rebuilds(app: Client) -> None:
    client, container = app
    carols = request_instance(client, "admin", owner_id=CAROL)["id"]
    alices = request_instance(client, "user")["id"]
    before = client.get(f"{API}/instances", params=caught_up(container), headers=AUTH["admin"]).json()["items"]
    assert CAROL in read_model_text(container)
    assert CAROL.encode() not in stored_bytes(container)  # sealed from the start

    forgotten = forget(client, container, CAROL)
    erased = forgotten["erased_as"]
    assert erased.startswith("erased-") and forgotten["subject_id"] not in erased

    assert CAROL not in read_model_text(container)
    after = client.get(f"{API}/instances", params=caught_up(container), headers=AUTH["admin"]).json()["items"]
    assert len(after) == len(before)  # counts stay whole
    owners = {item["id"]: item["owner_id"] for item in after}
    assert owners[carols] == erased
    assert owners[alices] == ALICE  # someone else: unchanged
    timeline = client.get(f"{API}/instances/{carols}/timeline", params=caught_up(container),
                          headers=AUTH["admin"]).json()["items"]
    assert timeline and CAROL not in json.dumps(timeline)

    container.rebuild_projections()  # a rebuild from the log brings no identity back
    assert CAROL not in read_model_text(container)
    assert ALICE in read_model_text(container)


def test_forgetting_the_caller_subject_erases_their_actor_too(app: Client) -> None:
    client, container = app
    instance_id = request_instance(client, "user")["id"]
    forgotten = forget(client, container, ALICE)
    timeline = client.get(f"{API}/instances/{instance_id}/timeline", params=caught_up(container),
                          headers=AUTH["admin"]).json()["items"]
    assert timeline[0]["actor"] == f"user:{forgotten['erased_as']}"
    assert f"user:{ALICE}" not in read_model_text(container)


def test_only_an_admin_forgets_and_only_someone_known(app: Client) -> None:
    client, container = app
    request_instance(client, "user")
    for role in ("user", "instructor", "service", "grader"):
        assert client.delete(f"{API}/people/{ALICE}", headers=AUTH[role]).status_code == 403
    forget(client, container, ALICE)
    again = client.delete(f"{API}/people/{ALICE}", headers=AUTH["admin"])
    assert_problem(again, 404)
    assert_problem(client.delete(f"{API}/people/nobody-at-all", headers=AUTH["admin"]), 404)
