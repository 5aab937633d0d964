"""A parked event shows on /readyz, /metrics and /api/v1/projections; an admin retries or skips it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import cli
from api.container import Container, discover_projections
from api.settings import Settings
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import ReadModelTx, Table
from projections.runner import ProjectionRunner

ADMIN = {"Authorization": "Bearer adm"}
USER = {"Authorization": "Bearer usr"}


class TemplateNames(Projection):
    """Breaks on one seeded worker template (as a bug would) until it is fixed."""

    name = "template_names"
    tables = (Table("template_names"),)
    broken = True

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        if event.event_name != "WorkerTemplateRegistered":
            return
        if self.broken and event.event.name == "personal-standard":
            raise ValueError("cannot read this template")
        tx.put("template_names", event.event.name, {"name": event.event.name})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    TemplateNames.broken = True
    container = Container(Settings(data_dir=tmp_path, store="sqlite", tokens="admin:adm,user:usr:alice",
                                   processors=False))
    container.projection_runner = ProjectionRunner(container.store, container.read_models,
                                                   [*discover_projections(), TemplateNames()])
    with TestClient(create_app(container)) as test_client:
        assert container.wait_for_position(container.store.max_position(), 10)
        yield test_client


def parked(client: TestClient) -> list[dict]:
    response = client.get("/api/v1/projections/parked", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_parked_event_is_reported_until_an_admin_skips_it(client: TestClient) -> None:
    [item] = parked(client)
    assert item["projection"] == "template_names" and item["stage"] == "apply"
    assert "ValueError: cannot read this template" in item["error"]

    ready = client.get("/readyz")
    assert ready.status_code == 503
    row = ready.json()["checks"]["projections"]["template_names"]
    assert row["ok"] is False and row["parked"] == 1 and row["lag"] == 0
    assert ready.json()["checks"]["projections"]["instances"]["ok"] is True
    assert 'lrm_projection_parked_events{projection="template_names"} 1.0' in client.get("/metrics").text
    assert client.get("/api/v1/projections/parked", headers=USER).status_code == 403

    skipped = client.post(f"/api/v1/projections/template_names/parked/{item['position']}/skip", headers=ADMIN)

    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert parked(client) == []
    assert client.get("/readyz").status_code == 200
    assert 'lrm_projection_parked_events{projection="template_names"} 0.0' in client.get("/metrics").text
    again = client.post(f"/api/v1/projections/template_names/parked/{item['position']}/skip", headers=ADMIN)
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


def test_a_retry_applies_the_event_once_fixed_and_409_while_it_still_fails(client: TestClient) -> None:
    [item] = parked(client)
    url = f"/api/v1/projections/template_names/parked/{item['position']}/retry"

    still = client.post(url, headers=ADMIN)
    assert still.status_code == 409
    assert parked(client)[0]["attempts"] == 2

    TemplateNames.broken = False
    fixed = client.post(url, headers=ADMIN)

    assert fixed.status_code == 200 and fixed.json()["status"] == "retried"
    models = client.app.state.container.read_models
    assert models.get("template_names", "personal-standard") == {"name": "personal-standard"}
    assert client.get("/readyz").status_code == 200
    status = client.get("/api/v1/projections", headers=ADMIN).json()["items"]
    assert {row["name"]: row["parked"] for row in status}["template_names"] == 0


def test_cli_lists_and_skips_parked_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LRM_TOKENS", "admin:adm")
    monkeypatch.setenv("LRM_PROCESSORS", "false")
    container = Container(Settings())
    container.start()
    assert container.wait_for_position(container.store.max_position(), 10)
    from projections.parking import park

    first = container.store.read_all(limit=1)[0]
    with container.read_models.transaction() as tx:
        park(tx, "instances", first, RuntimeError("boom"), "apply")
    container.stop()

    listed = CliRunner().invoke(cli, ["projections", "parked"])
    assert listed.exit_code == 0, listed.output
    assert f"position={first.position}" in listed.output and "RuntimeError: boom" in listed.output
    skipped = CliRunner().invoke(cli, ["projections", "skip", "instances", str(first.position)])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped" in skipped.output
    assert "no parked events" in CliRunner().invoke(cli, ["projections", "parked"]).output
    missing = CliRunner().invoke(cli, ["projections", "retry", "instances", str(first.position)])
    assert missing.exit_code == 1
