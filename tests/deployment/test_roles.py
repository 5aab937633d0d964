"""Role selection for ``lablet serve --role`` and what a container starts for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.container import Container
from api.roles import PROCESSOR_ROLES, ROLES, describe, parse_roles
from api.settings import Settings


@pytest.mark.parametrize(("given", "expected"), [
    (None, set(ROLES)),
    ([], set(ROLES)),
    ("all", set(ROLES)),
    (["api"], {"api"}),
    (["scheduler,dispatcher"], {"scheduler", "dispatcher"}),
    (["scheduler", "dispatcher"], {"scheduler", "dispatcher"}),
    ([" Workers , instances "], {"workers", "instances"}),
    (["api", "all"], set(ROLES)),
])
def test_roles_parse(given: object, expected: set[str]) -> None:
    assert parse_roles(given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [["schedular"], ["api,nope"]])
def test_unknown_roles_are_refused_by_name(given: list[str]) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles(given)


def test_describe_names_all_or_the_roles_in_order() -> None:
    assert describe(parse_roles("all")) == "all"
    assert describe(parse_roles("dispatcher,api")) == "api,dispatcher"


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"store": "sqlite", "processors": True, **overrides}
    return Settings(data_dir=tmp_path, tokens="admin:adm", **values)


@pytest.mark.parametrize("roles", [{"scheduler"}, {"workers", "instances"}, {"api"}, {"projections"}])
def test_a_container_starts_only_its_roles(tmp_path: Path, roles: set[str]) -> None:
    container = Container(settings(tmp_path), roles=frozenset(roles))
    container.start()
    try:
        running = {role for role, part in container._processors().items() if part.running}
        assert running == roles & set(PROCESSOR_ROLES)
        assert container.projection_runner.running == bool(roles & {"api", "projections"})
        assert set(container.lease_status()) == roles & set(PROCESSOR_ROLES)
        assert set(container.lease_status().values()) <= {"local"}  # SQLite: one process, no lease
    finally:
        container.stop()


def test_only_the_api_role_seeds_templates(tmp_path: Path) -> None:
    container = Container(settings(tmp_path), roles=frozenset({"scheduler"}))
    container.start()
    head = container.store.max_position()
    container.stop()
    assert head == 0
    container = Container(settings(tmp_path / "api"), roles=frozenset({"api"}))
    container.start()
    try:
        assert container.store.max_position() > 0
    finally:
        container.stop()


def test_roles_come_from_settings_by_default(tmp_path: Path) -> None:
    container = Container(settings(tmp_path, roles="api,scheduler"))
    try:
        assert container.roles == {"api", "scheduler"}
    finally:
        container.close()


def test_esdb_needs_both_urls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LRM_ESDB_URI and LRM_READMODEL_URL"):
        Container(settings(tmp_path, store="esdb", esdb_uri="esdb://localhost:2113?Tls=false"))


@pytest.mark.postgres
def test_esdb_log_with_postgres_read_models_serves_the_api(tmp_path: Path, postgres_database: str) -> None:
    """LRM_STORE=esdb: the log in EventStoreDB (the in-process fake here), everything else in
    PostgreSQL; a command's position is readable back through the read models."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    container = Container(settings(tmp_path, store="esdb", esdb_uri=f"fake://{tmp_path.name}",
                                   readmodel_url=postgres_database, processors=False))
    assert container.store.kind == "esdb"
    with TestClient(create_app(container)) as client:
        templates = client.get("/api/v1/worker-templates", headers={"Authorization": "Bearer adm"},
                               params={"min_position": container.store.max_position()})
        assert templates.status_code == 200, templates.text
        assert "personal-standard" in {t["name"] for t in templates.json()["items"]}
        assert client.get("/readyz").json()["ready"] is True


def test_a_processor_only_process_is_ready_without_projections(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.cli import _health_only

    container = Container(settings(tmp_path), roles=frozenset({"scheduler"}))
    with TestClient(_health_only(container)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["leases"] == {"scheduler": "local"}
        assert ready.json()["checks"]["projections"] == {}
        assert client.get("/healthz").json() == {"status": "ok", "roles": "scheduler"}
        assert "lrm_lease_active" in client.get("/metrics").text
