"""Issue 16: open SSE streams are capped (429 per caller, 503 in all, with Retry-After), one
poller per process serves them all, and everything a stream held is released when it closes.
On SQLite and PostgreSQL, over real HTTP (uvicorn), since streams are long-lived connections.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.streaming.caps import StreamCaps, TooManyStreams
from api.streaming.hub import QUEUE_SIZE, Rendered, Subscriber, wire_of
from tests.api.hostile_support import STORES, store_settings
from tests.api.test_events import read_sse
from tests.api.test_instances_support import API, AUTH, NOW, serve

STREAM = f"{API}/events/stream"


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Container]]:
    with store_settings(request.param, tmp_path, sse_max_streams=3, sse_max_streams_per_caller=2) as settings:
        container = Container(settings, clock=VirtualClock(NOW))
        with serve(create_app(container)) as base_url:
            yield base_url, container


def open_stream(stack: ExitStack, base_url: str, role: str) -> httpx.Response:
    http = stack.enter_context(httpx.Client(base_url=base_url, headers=AUTH[role], timeout=10))
    return stack.enter_context(http.stream("GET", STREAM))


def until(condition, timeout: float = 10) -> bool:  # noqa: ANN001 - a zero-argument predicate
    """Streams close asynchronously (the server notices the disconnect): wait, bounded."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_streams_are_capped_per_caller_then_in_all_and_released_when_closed(
    server: tuple[str, Container],
) -> None:
    base_url, container = server
    with ExitStack() as streams:
        for _ in range(2):
            assert open_stream(streams, base_url, "admin").status_code == 200
        with httpx.Client(base_url=base_url, headers=AUTH["admin"], timeout=10) as http:
            third = http.get(STREAM)
        assert third.status_code == 429
        assert third.headers["content-type"].startswith("application/problem+json")
        assert int(third.headers["retry-after"]) > 0
        assert third.json()["errors"][0]["field"] == "stream"
        assert open_stream(streams, base_url, "instructor").status_code == 200  # another caller may
        with httpx.Client(base_url=base_url, headers=AUTH["instructor"], timeout=10) as http:
            fourth = http.get(STREAM)
        assert fourth.status_code == 503 and int(fourth.headers["retry-after"]) > 0
        assert container.stream_caps.open == 3
        assert until(lambda: container.event_hub.subscribers == 3)
        assert container.event_hub.running
    # Closed: no count, no caller entry, no subscriber, no poller left behind.
    assert until(lambda: container.stream_caps.open == 0)
    assert until(lambda: container.event_hub.subscribers == 0 and not container.event_hub.running)
    assert container.stream_caps.callers() == 0
    with ExitStack() as streams:  # and the caps are free again
        assert open_stream(streams, base_url, "admin").status_code == 200


def test_one_poller_delivers_each_new_event_to_every_open_stream(server: tuple[str, Container]) -> None:
    base_url, container = server
    with ExitStack() as streams:
        opened = [open_stream(streams, base_url, role) for role in ("admin", "admin", "instructor")]
        assert until(lambda: container.event_hub.subscribers == 3)
        before = container.store.max_position()
        publish_position = _publish(container)
        new = [e.position for e in container.store.read_all(after=before, limit=100)]
        for response in opened:  # every stream: the same new events, in order, once
            events = read_sse(response, len(new))
            assert [int(e["id"]) for e in events] == new and new[-1] == publish_position
            assert json.loads(events[-1]["data"])["type"] == "DefinitionVersionPublished"


def _publish(container: Container) -> int:
    from tests.api.test_templates_support import definition_body, system_ctx

    fields = definition_body()
    lab_yaml = fields.pop("lab_yaml")
    return container.definition_service.publish(fields, system_ctx(container, "admin:admin"),
                                                lab_yaml=lab_yaml).position


# -- units ------------------------------------------------------------------------------------
def test_a_slow_subscriber_is_dropped_and_its_queue_emptied() -> None:
    async def scenario() -> Subscriber:
        subscriber = Subscriber(joined_at=0)
        for position in range(1, QUEUE_SIZE + 5):
            subscriber.offer(Rendered(position, "E", "{}"))
        return subscriber

    subscriber = asyncio.run(scenario())
    assert subscriber.dropped
    assert subscriber.queue.qsize() == 1 and subscriber.queue.get_nowait() is None  # only "end your stream"


def test_what_is_queued_goes_out_as_one_chunk_of_the_same_messages_sse_starlette_would_send() -> None:
    from sse_starlette.sse import ensure_bytes

    async def scenario() -> tuple[list[Rendered], bool]:
        subscriber = Subscriber(joined_at=0)
        for position in (2, 3):
            subscriber.offer(Rendered(position, "InstanceRequested", '{"a": "line1\\nline2"}'))
        return subscriber.take_ready(Rendered(1, "E", "{}"))

    ready, behind = asyncio.run(scenario())
    assert [item.position for item in ready] == [1, 2, 3] and not behind
    one_by_one = b"".join(ensure_bytes({"id": str(i.position), "event": i.name, "data": i.data}, "\r\n")
                          for i in ready)
    assert wire_of(ready) == one_by_one


def test_a_dropped_subscriber_ends_after_what_it_had_taken() -> None:
    async def scenario() -> tuple[list[Rendered], bool]:
        subscriber = Subscriber(joined_at=0)
        for position in range(1, QUEUE_SIZE + 5):
            subscriber.offer(Rendered(position, "E", "{}"))
        return subscriber.take_ready(Rendered(0, "E", "{}"))

    ready, behind = asyncio.run(scenario())
    assert [item.position for item in ready] == [0] and behind


def test_caps_count_per_caller_and_in_all_and_forget_a_caller_with_its_last_stream() -> None:
    caps = StreamCaps(total=3, per_caller=2)
    a1, a2 = caps.acquire("user:a"), caps.acquire("user:a")
    with pytest.raises(TooManyStreams) as per_caller:
        caps.acquire("user:a")
    assert per_caller.value.status == 429
    b1 = caps.acquire("user:b")
    with pytest.raises(TooManyStreams) as in_all:
        caps.acquire("user:c")
    assert in_all.value.status == 503
    for lease in (a1, a2, b1, b1):  # releasing twice is harmless
        lease.release()
    assert (caps.open, caps.callers()) == (0, 0)


def test_the_hub_keeps_polling_after_a_failed_read_of_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.streaming import hub as hub_module

    monkeypatch.setattr(hub_module, "ERROR_BACKOFF_SECONDS", 0.01)
    reads: list[int] = []

    def read_all(after: int, limit: int) -> list[int]:
        reads.append(after)
        if len(reads) == 1:
            raise OSError("the store is down for a moment")
        return [after + 1] if after < 3 else []

    async def scenario() -> list[int]:
        events = hub_module.EventHub(read_all, lambda: 0, lambda p: Rendered(p, "E", "{}"), poll_seconds=0.01)
        subscriber = await events.subscribe()
        got = [(await asyncio.wait_for(subscriber.queue.get(), 10)).position for _ in range(3)]
        events.unsubscribe(subscriber)
        return got

    assert asyncio.run(scenario()) == [1, 2, 3]
