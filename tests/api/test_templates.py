"""``/worker-templates``: seeding, create/update/delete, roles, and refusals that append nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from domain.context import CommandContext
from domain.worker import Worker
from domain.worker_template import WorkerTemplate
from tests.api.test_templates_support import (
    send_as_admin,
    ADMIN,
    API,
    AUTH,
    ROOT,
    assert_problem,
    caught_up,
    control_client,
    head,
    running_worker,
    template_body,
)

SEEDED = {"personal-standard", "enterprise-large"}
URL = f"{API}/worker-templates"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    with control_client(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Container]]:
    """One app for the tests that only read or are refused (cheaper than one app per test)."""
    with control_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def names(client: TestClient, container: Container, **params: object) -> list[str]:
    response = client.get(URL, headers=ADMIN, params={**caught_up(container), **params})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_start_up_seeds_the_templates_of_the_file(app: tuple[TestClient, Container]) -> None:
    client, container = app
    assert set(names(client, container)) == SEEDED
    body = client.get(f"{URL}/personal-standard", headers=ADMIN).json()
    assert body["license_type"] == "PERSONAL"
    assert body["capacity"] == {"cpu_cores": 48.0, "memory_gb": 192.0, "storage_gb": 500.0}
    assert body["port_range"] == {"start": 2000, "end": 2999}


def test_seeding_never_overwrites_an_admin_edit_nor_revives_a_removal(tmp_path: Path) -> None:
    with control_client(tmp_path) as (client, container):
        edited = client.put(f"{URL}/personal-standard", headers=ADMIN, json=template_body(hourly_cost=9.5))
        assert edited.status_code == 202, edited.text
        assert client.delete(f"{URL}/enterprise-large", headers=ADMIN).status_code == 202
        before = head(container)
    with control_client(tmp_path) as (client, container):
        assert head(container) == before  # the restart seeded nothing
        assert names(client, container) == ["personal-standard"]
        assert client.get(f"{URL}/personal-standard", headers=ADMIN).json()["hourly_cost"] == 9.5


def test_put_creates_then_updates_then_is_a_no_op(app: tuple[TestClient, Container]) -> None:
    client, container = app
    created = client.put(f"{URL}/lab-small", headers=ADMIN, json=template_body())
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    assert created.json()["position"] == head(container)

    again = client.put(f"{URL}/lab-small", headers=ADMIN, json=template_body())
    assert again.status_code == 200
    assert again.json() == {"name": "lab-small", "created": False, "changed_fields": [], "position": head(container)}

    updated = client.put(f"{URL}/lab-small", headers=ADMIN, json=template_body(max_nodes=10, name="lab-small"))
    assert updated.status_code == 202
    assert updated.json()["changed_fields"] == ["max_nodes"]
    shown = client.get(f"{URL}/lab-small", headers=ADMIN, params={"min_position": updated.json()["position"]})
    assert shown.json()["max_nodes"] == 10
    assert shown.json()["stream_version"] == 1


def test_delete_then_register_again(app: tuple[TestClient, Container]) -> None:
    client, container = app
    client.put(f"{URL}/lab-small", headers=ADMIN, json=template_body())
    deleted = client.delete(f"{URL}/lab-small", headers=ADMIN)
    assert deleted.status_code == 202
    assert_problem(client.get(f"{URL}/lab-small", headers=ADMIN, params=caught_up(container)), 404)
    assert "lab-small" not in names(client, container)
    assert_problem(client.delete(f"{URL}/lab-small", headers=ADMIN), 404)
    again = client.put(f"{URL}/lab-small", headers=ADMIN, json=template_body())
    assert again.status_code == 201
    assert "lab-small" in names(client, container)


def test_delete_is_refused_while_a_live_worker_uses_the_template(app: tuple[TestClient, Container]) -> None:
    client, container = app
    worker_id = running_worker(client, container, "enterprise-large")
    shown = client.get(f"{URL}/enterprise-large", headers=ADMIN, params=caught_up(container)).json()
    assert shown["in_use_by"] == [worker_id]
    before = head(container)
    body = assert_problem(client.delete(f"{URL}/enterprise-large", headers=ADMIN), 409)
    assert worker_id in body["detail"]
    assert head(container) == before

    worker: Worker = container.store.get(worker_id)
    worker.terminate("admin", CommandContext(at=container.clock.now(), actor="test"))
    container.store.save(worker)
    assert client.delete(f"{URL}/enterprise-large", headers=ADMIN).status_code == 202


def test_a_failed_worker_does_not_hold_its_template(app: tuple[TestClient, Container]) -> None:
    client, container = app
    provisioned = client.post(f"{API}/workers", headers=ADMIN, json={"template": "enterprise-large"})
    worker: Worker = container.store.get(provisioned.json()["id"])
    worker.provisioning_failed("no capacity in us-east-1a", CommandContext(at=container.clock.now(), actor="test"))
    container.store.save(worker)
    assert client.delete(f"{URL}/enterprise-large", headers=ADMIN).status_code == 202


def test_list_filters_by_licence_and_pages_with_a_cursor(app: tuple[TestClient, Container]) -> None:
    client, container = app
    for name in ("a-one", "b-two", "c-three"):
        client.put(f"{URL}/{name}", headers=ADMIN, json=template_body())
    assert names(client, container, license_type="ENTERPRISE") == ["enterprise-large"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {**caught_up(container), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(URL, headers=ADMIN, params=params).json()
        assert len(page["items"]) <= 2
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(SEEDED | {"a-one", "b-two", "c-three"})
    assert_problem(client.get(URL, headers=ADMIN, params={"cursor": "not-a-cursor"}), 422, "cursor")


@pytest.mark.parametrize(
    "role, method, path, status",
    [
        ("instructor", "GET", URL, 200),
        ("user", "GET", URL, 200),
        ("service", "GET", f"{URL}/personal-standard", 200),
        ("grader", "GET", URL, 403),
        ("instructor", "PUT", f"{URL}/x", 403),
        ("user", "PUT", f"{URL}/x", 403),
        ("service", "DELETE", f"{URL}/personal-standard", 403),
        (None, "GET", URL, 401),
    ],
)
def test_roles(shared: tuple[TestClient, Container], role: str | None, method: str, path: str, status: int) -> None:
    client, container = shared
    before = head(container)
    response = client.request(method, path, headers=AUTH.get(role or "", {}),
                              json=template_body() if method == "PUT" else None)
    assert response.status_code == status, response.text
    assert head(container) == before


@pytest.mark.parametrize(
    "name, body, status, field",
    [
        ("ok-name", "{not json", 400, None),
        ("ok-name", template_body(colour="blue"), 422, "colour"),
        ("ok-name", template_body(max_nodes="5"), 422, "max_nodes"),
        ("ok-name", template_body(capacity={"cpu_cores": 4, "memory_gb": 8}), 422, "capacity.storage_gb"),
        ("ok-name", template_body(license_type="GOLD"), 422, "license_type"),
        ("ok-name", template_body(max_nodes=50), 422, "max_nodes"),
        ("ok-name", template_body(port_range={"start": 1000, "end": 1100}), 422, "port_range.start"),
        ("ok-name", template_body(ami_pattern="CML-[2"), 422, "ami_pattern"),
        ("ok-name", template_body(name="other-name"), 422, "name"),
        ("Bad_Name", template_body(), 422, "name"),
        ("x" * 201, template_body(), 422, "name"),
        ("ok-name", {"description": "only"}, 422, "instance_type"),
    ],
)
def test_bad_input_is_a_problem_and_appends_nothing(
    shared: tuple[TestClient, Container], name: str, body: object, status: int, field: str | None
) -> None:
    client, container = shared
    before = head(container)
    response = send_as_admin(client, "PUT", f"{URL}/{name}", body)
    assert_problem(response, status, field)
    assert head(container) == before


def test_unknown_template_is_404(shared: tuple[TestClient, Container]) -> None:
    client, container = shared
    assert_problem(client.get(f"{URL}/no-such", headers=ADMIN), 404)
    assert_problem(client.delete(f"{URL}/no-such", headers=ADMIN), 404)
    assert_problem(client.get(f"{URL}/{'y' * 201}", headers=ADMIN), 422, "name")


def test_a_template_added_to_the_file_later_is_seeded_on_the_next_start(tmp_path: Path) -> None:
    seed = tmp_path / "templates.yaml"
    original = (ROOT / "config" / "worker-templates.yaml").read_text()
    seed.write_text(original)
    data_dir = tmp_path / "data"
    with control_client(data_dir, worker_templates_file=seed) as (client, container):
        assert set(names(client, container)) == SEEDED
    extra = original.split("\n  - name: enterprise-large")[0].replace("personal-standard", "personal-extra")
    seed.write_text(original + "\n" + extra.split("templates:\n", 1)[1])
    with control_client(data_dir, worker_templates_file=seed) as (client, container):
        assert set(names(client, container)) == SEEDED | {"personal-extra"}


def test_concurrent_creates_of_one_name_end_as_one_create_and_one_update(tmp_path: Path) -> None:
    with control_client(tmp_path) as (client, container):
        results: list[int] = []

        def put(hourly_cost: float) -> None:
            response = client.put(f"{URL}/race", headers=ADMIN, json=template_body(hourly_cost=hourly_cost))
            results.append(response.status_code)

        threads = [threading.Thread(target=put, args=(cost,)) for cost in (1.0, 2.0)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [201, 202]
        events = container.store.read_stream(WorkerTemplate.stream_id_for("race"))
        assert [e.event_name for e in events] == ["WorkerTemplateRegistered", "WorkerTemplateUpdated"]
