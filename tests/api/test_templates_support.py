"""Shared set-up of the control-API tests (templates, definitions, workers, capacity); no tests here."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from domain.context import CommandContext
from domain.resources import Resources
from domain.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "config" / "samples"
TOKENS = "admin:adm,instructor:ins,user:usr:alice,user:usr2:bob,grader:grd,service:svc:exam"
AUTH = {
    role: {"Authorization": f"Bearer {token}"}
    for role, token in [("admin", "adm"), ("instructor", "ins"), ("user", "usr"), ("grader", "grd"),
                        ("service", "svc")]
}
ADMIN = AUTH["admin"]
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
API = "/api/v1"


@contextmanager
def control_client(data_dir: Path, **settings: Any) -> Iterator[tuple[TestClient, Container]]:
    """A started app on a SQLite store in ``data_dir`` with a virtual clock at ``NOW``."""
    # Tests written before If-Match edit without it unless they ask (tests/api/test_etags.py does).
    settings.setdefault("require_if_match", False)
    container = Container(
        Settings(data_dir=data_dir, store="sqlite", tokens=TOKENS, **settings), clock=VirtualClock(NOW)
    )
    with TestClient(create_app(container)) as client:
        yield client, container


def head(container: Container) -> int:
    """The store's last position: unchanged means no event was appended."""
    return container.store.max_position()


def caught_up(container: Container) -> dict[str, int]:
    """Query parameters that make a read wait for everything written so far."""
    return {"min_position": head(container)}


def template_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "test host",
        "instance_type": "m5zn.metal",
        "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500},
        "license_type": "PERSONAL",
        "max_nodes": 20,
        "ami_pattern": "CML-2.9.*",
        "ami_version": "2.9.0",
        "region": "us-east-1",
        "port_range": {"start": 2000, "end": 2009},
        "startup_minutes": 20,
        "restart_minutes": 5,
        "hourly_cost": 3.96,
        "drain_timeout_hours": 4,
        "nested_virt": True,
        "tags": {"tier": "test"},
    }
    body.update(overrides)
    return body


def sample_lab_yaml(sample: str = "ccna-basic-routing") -> str:
    return (SAMPLES / sample / "lab.yaml").read_text()


def definition_body(sample: str = "ccna-basic-routing", **overrides: Any) -> dict[str, Any]:
    """The sample's definition.yaml as a publish body, with the lab YAML text inline."""
    data = YAML(typ="safe").load((SAMPLES / sample / "definition.yaml").read_text())
    body = copy.deepcopy(data)
    body.pop("lab_yaml")
    body["lab_yaml"] = sample_lab_yaml(sample)
    body["version"] = str(body["version"]) if "version" in body else None
    if body["version"] is None:
        body.pop("version")
    body.update(overrides)
    return body


def system_ctx(container: Container, actor: str = "test:controller") -> CommandContext:
    return CommandContext(at=container.clock.now(), actor=actor)


def running_worker(client: TestClient, container: Container, template: str = "personal-standard") -> str:
    """Provision through the API, then play the worker controller: PROVISIONING → RUNNING."""
    response = client.post(f"{API}/workers", json={"template": template}, headers=ADMIN)
    assert response.status_code == 201, response.text
    worker_id = response.json()["id"]
    worker: Worker = container.store.get(worker_id)
    ctx = system_ctx(container)
    worker.start_provisioning("i-0123456789abcdef0", ctx)
    worker.mark_ready("10.0.0.10", ctx)
    container.store.save(worker)
    return worker_id


def reserve(
    container: Container, worker_id: str, instance_id: str, start: datetime, hours: float,
    cpu: float = 2, nodes: int = 2, ports: tuple[str, ...] = ("serial_1",),
) -> dict[str, int]:
    worker: Worker = container.store.get(worker_id)
    allocated = worker.reserve(
        instance_id, Resources(cpu, 4 * cpu, 10), nodes, list(ports), start, start + timedelta(hours=hours),
        system_ctx(container, "test:scheduler"),
    )
    container.store.save(worker)
    return allocated


def send_as_admin(client: TestClient, method: str, url: str, body: object) -> Any:
    """A str body is sent as raw JSON text (for malformed JSON); anything else as JSON."""
    if isinstance(body, str):
        headers = {**ADMIN, "content-type": "application/json"}
        return client.request(method, url, headers=headers, content=body)
    return client.request(method, url, headers=ADMIN, json=body)


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    if field is not None:
        # Request validation names the location and the item too ("path.name", "license_affinity.0").
        fields = [error["field"] for error in body.get("errors", [])]
        assert any(f == field or f.endswith(f".{field}") or f.startswith(f"{field}.") for f in fields), body
        assert all(error["reason"] for error in body["errors"])
    return body
