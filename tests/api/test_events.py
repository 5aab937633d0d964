"""``/events``: the global log in pages, and live over SSE (real HTTP: TestClient cannot stream forever)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from tests.api.test_instances_support import (
    ADMIN,
    API,
    AUTH,
    NOW,
    TOKENS,
    assert_problem,
    head,
    definition_body,
    instance_client,
    request_instance,
    serve,
    system_ctx,
)

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with instance_client(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with instance_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def test_the_feed_pages_through_the_whole_log(app: Client) -> None:
    client, container = app
    request_instance(client, "user")
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(f"{API}/events", params={"after": after, "limit": 2}, headers=AUTH["instructor"]).json()
        assert page["head"] == head(container)
        if not page["items"]:
            assert page["next_after"] == after
            break
        seen += page["items"]
        after = page["next_after"]
    assert [e["position"] for e in seen] == sorted({e["position"] for e in seen})
    assert seen[-1]["position"] == head(container)
    requested = seen[-1]
    assert requested["type"] == "InstanceRequested"
    assert requested["stream_id"].startswith("LabletInstance-")
    assert requested["version"] == 0
    assert requested["actor"] == "user:alice"
    assert requested["data"]["definition_name"] == "ccna-basic-routing"
    assert requested["occurred_at"].startswith("2026-11-28T09:00:00")
    assert {"causation_id", "correlation_id"} <= set(requested)


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("instructor", 200), ("user", 403), ("service", 403),
                                              ("grader", 403)])
def test_only_admins_and_instructors_read_the_log(shared: Client, role: str, status: int) -> None:
    client, _ = shared
    assert client.get(f"{API}/events", headers=AUTH[role]).status_code == status
    if status == 403:
        assert_problem(client.get(f"{API}/events/stream", headers=AUTH[role]), 403)


@pytest.mark.parametrize(("params", "field"), [({"after": -1}, "after"), ({"after": 2**63}, "after"),
                                               ({"limit": 0}, "limit"),
                                               ({"limit": 501}, "limit"), ({"after": "x"}, "after")])
def test_bad_feed_parameters(shared: Client, params: dict[str, Any], field: str) -> None:
    client, _ = shared
    assert_problem(client.get(f"{API}/events", params=params, headers=ADMIN), 422, field)


@pytest.mark.parametrize("last_event_id", ["abc", "-1", str(2**63)])
def test_a_bad_last_event_id_is_422(shared: Client, last_event_id: str) -> None:
    client, _ = shared
    assert_problem(client.get(f"{API}/events/stream", headers={**ADMIN, "Last-Event-ID": last_event_id}), 422,
                   "Last-Event-ID")


# -- SSE over real HTTP --------------------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Container]]:
    container = Container(Settings(data_dir=tmp_path, store="sqlite", tokens=TOKENS), clock=VirtualClock(NOW))
    with serve(create_app(container)) as base_url:
        yield base_url, container


def read_sse(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of an open SSE response (pings, comments skipped)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return events


def test_sse_streams_the_log_and_resumes_after_last_event_id(server: tuple[str, Container]) -> None:
    base_url, container = server
    with httpx.Client(base_url=base_url, headers=ADMIN, timeout=10) as http:
        _publish(container)
        total = head(container)
        with http.stream("GET", f"{API}/events/stream", params={"after": 0}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_sse(response, total)
        assert [int(e["id"]) for e in events] == list(range(1, total + 1))
        assert events[-1]["event"] == "DefinitionVersionPublished"
        assert json.loads(events[-1]["data"])["position"] == total
        # Reconnect as a browser would: only what came after the last id seen.
        with http.stream("GET", f"{API}/events/stream", headers={"Last-Event-ID": str(total - 1)}) as response:
            assert [int(e["id"]) for e in read_sse(response, 1)] == [total]


def test_sse_delivers_new_events_live_without_blocking_the_server(server: tuple[str, Container]) -> None:
    base_url, container = server
    with httpx.Client(base_url=base_url, headers=ADMIN, timeout=10) as http:
        _publish(container)
        got: list[dict[str, Any]] = []
        connected = threading.Event()

        def listen() -> None:
            with httpx.Client(base_url=base_url, headers=ADMIN, timeout=10) as own:
                with own.stream("GET", f"{API}/events/stream") as response:  # from the head: new events only
                    connected.set()
                    got.extend(read_sse(response, 1))

        listener = threading.Thread(target=listen)
        listener.start()
        assert connected.wait(10)
        # The server still answers other requests while a stream is open.
        accepted = http.post(f"{API}/instances", json={"definition": "ccna-basic-routing"},
                             headers=AUTH["user"]).json()
        listener.join(10)
        assert not listener.is_alive()
        assert got and got[0]["event"] == "InstanceRequested"
        assert int(got[0]["id"]) == accepted["position"]
        assert json.loads(got[0]["data"])["stream_id"] == accepted["id"]


def _publish(container: Container) -> None:
    fields = definition_body()
    lab_yaml = fields.pop("lab_yaml")
    container.definition_service.publish(fields, system_ctx(container, "admin:admin"), lab_yaml=lab_yaml)
