"""Shared set-up of the instance-API tests (instances, timelines, events); no tests here.

Builds on the control-API support (same tokens, virtual clock at ``NOW``, sample definitions)
and adds what the processors would do to an instance (place it, bring it up), done directly
on the store, so the API can be tested through a whole life without the processors.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.container import Container
from domain.instance import LabletInstance
from domain.timeslot import hold_window
from domain.worker import Worker
from tests.api.test_templates_support import (
    ADMIN,
    API,
    AUTH,
    NOW,
    TOKENS,
    assert_problem,
    caught_up,
    control_client,
    definition_body,
    head,
    running_worker,
    system_ctx,
)

__all__ = [
    "ADMIN", "API", "AUTH", "NOW", "TOKENS", "assert_problem", "caught_up", "definition_body", "head",
    "instance_client", "publish", "deprecate", "request_instance", "running_worker", "place", "bring_up", "system_ctx",
    "serve", "by_callers", "event_at",
]
CALLER_ROLES = frozenset({"admin", "instructor", "user", "grader", "service"})
DEFINITION = "ccna-basic-routing"


@contextmanager
def instance_client(data_dir: Path, **settings: Any) -> Iterator[tuple[TestClient, Container]]:
    """A started app (SQLite, virtual clock at ``NOW``) with the sample definition published."""
    with control_client(data_dir, **settings) as (client, container):
        publish(client)
        yield client, container


def publish(client: TestClient, sample: str = DEFINITION, **overrides: Any) -> dict[str, Any]:
    """Publish a sample definition through the container's service (the HTTP endpoint is the
    control API's to test; the end-to-end test publishes over HTTP)."""
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    fields = definition_body(sample, **overrides)
    lab_yaml = fields.pop("lab_yaml")
    published = container.definition_service.publish(fields, system_ctx(container, "admin:admin"), lab_yaml=lab_yaml)
    return {"name": published.version.name, "version": published.version.version, "created": published.created,
            "position": published.position}


def deprecate(client: TestClient, name: str = DEFINITION) -> int:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    return container.definition_service.deprecate(name, system_ctx(container, "admin:admin"))


def request_instance(
    client: TestClient, role: str = "user", *, headers: dict[str, str] | None = None, expect: int = 201,
    **body: Any,
) -> dict[str, Any]:
    body.setdefault("definition", DEFINITION)
    response = client.post(f"{API}/instances", json=body, headers={**AUTH[role], **(headers or {})})
    assert response.status_code == expect, response.text
    return response.json()


def place(container: Container, instance_id: str, worker_id: str) -> dict[str, int]:
    """Play the scheduler: reserve on the worker, then record the decision and schedule (two saves)."""
    ctx = system_ctx(container, "system:scheduler")
    instance: LabletInstance = container.store.get(instance_id)
    worker: Worker = container.store.get(worker_id)
    start, end = hold_window(instance.timeslot_start, instance.timeslot_end, ctx.at)
    requirements = instance.requirements
    ports = worker.reserve(instance_id, requirements.resources, requirements.node_count,
                           list(requirements.port_names), start, end, ctx)
    container.store.save(worker)
    decision = {"outcome": "placed", "policy": "test", "chosen_worker_id": worker_id, "candidates": [worker_id]}
    instance.record_placement_decided("decision-1", worker_id, decision, ctx)
    instance.schedule(worker_id, ports, start, end, "decision-1", ctx)
    container.store.save(instance)
    return ports


def bring_up(container: Container, instance_id: str, *, advance: timedelta = timedelta(minutes=1)) -> None:
    """Play the instance controller: SCHEDULED → INSTANTIATING → READY, a minute later."""
    container.clock.advance(advance)  # type: ignore[attr-defined] - the tests' VirtualClock
    ctx = system_ctx(container, "system:instance-controller")
    instance: LabletInstance = container.store.get(instance_id)
    instance.start_instantiation(1, ctx)
    instance.record_lab_imported("lab-1", ctx)
    instance.record_lab_started(ctx)
    instance.mark_ready({"login_url": "https://cml.example/lab-1", "devices": ["R1", "PC1"]}, ctx)
    container.store.save(instance)


def by_callers(container: Container, before: int) -> list[str]:
    """Types of the events appended after ``before`` by API callers (not by processors).

    "Nothing appended" is checked with this rather than the log's head, so that a processor
    reacting to an earlier event (a scheduler recording a placement) cannot make it flaky.
    """
    return [e.event_name for e in container.store.read_all(after=before, limit=1000)
            if e.event.actor.split(":")[0] in CALLER_ROLES]


def event_at(container: Container, position: int) -> tuple[str, str]:
    """(type, stream id) of the event at ``position`` (SQLite positions have no gaps)."""
    [stored] = container.store.read_all(after=position - 1, limit=1)
    assert stored.position == position
    return stored.event_name, stored.stream_id


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Real HTTP: uvicorn on a free port in a background thread; yields the base URL.

    The socket is bound before the server starts (port 0), so there is no race for the port;
    the server runs the app's lifespan (the container starts and stops with it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
