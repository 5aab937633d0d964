"""The fake client behaves like EventStoreDB where our recorders depend on it.

Each test runs on the fake, and on a real server too when ``LRM_TEST_ESDB_URI`` is set:
the same assertions, so a difference between the fake and the server fails here first.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.exceptions import NotFound, WrongCurrentVersion

from adapters.eventstore.esdb.fake_client import (
    FakeEventStoreDBClient,
    FakeEventStoreDBServer,
    InvalidCommitPosition,
)
from tests.store_esdb.conftest import ESDB_URI, REAL


@pytest.fixture(params=["esdb-fake", REAL])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    c: Any = (FakeEventStoreDBClient(FakeEventStoreDBServer()) if request.param == "esdb-fake"
              else EventStoreDBClient(ESDB_URI))
    yield c
    c.close()


@pytest.fixture
def name() -> str:
    """A prefix no other test (or earlier run on the same server) uses."""
    return f"t{uuid.uuid4().hex[:12]}"


def events(name: str, n: int, data: bytes = b"{}") -> list[NewEvent]:
    return [NewEvent(type=f"{name}.Happened", data=data, id=uuid.uuid4()) for _ in range(n)]


def test_revisions_count_from_zero_and_positions_increase_with_gaps(client: Any, name: str) -> None:
    single = client.append_to_stream(f"{name}-a", current_version=StreamState.NO_STREAM,
                                      events=events(name, 1))
    client.append_to_stream(f"{name}-a", current_version=0, events=events(name, 2))

    stored = client.get_stream(f"{name}-a")

    assert [e.stream_position for e in stored] == [0, 1, 2]
    assert stored[0].commit_position == single
    positions = [e.commit_position for e in stored]
    assert all(b - a > 1 for a, b in zip(positions, positions[1:]))
    assert client.get_current_version(f"{name}-a") == 2
    assert client.get_current_version(f"{name}-missing") is StreamState.NO_STREAM


@pytest.mark.parametrize(
    ("existing", "expected", "accepted"),
    [
        (0, StreamState.NO_STREAM, True),
        (2, StreamState.NO_STREAM, False),
        (2, 1, True),
        (2, 0, False),
        (2, 5, False),
        (0, 0, False),
        (0, StreamState.EXISTS, False),
        (1, StreamState.EXISTS, True),
        (0, StreamState.ANY, True),
        (3, StreamState.ANY, True),
    ],
)
def test_appends_check_the_expected_revision(client: Any, name: str, existing: int,
                                             expected: Any, accepted: bool) -> None:
    stream = f"{name}-s"
    if existing:
        client.append_to_stream(stream, current_version=StreamState.NO_STREAM,
                                events=events(name, existing))
    new = events(name, 1)

    if accepted:
        client.append_to_stream(stream, current_version=expected, events=new)
        assert client.get_stream(stream)[-1].id == new[0].id
    else:
        with pytest.raises(WrongCurrentVersion):
            client.append_to_stream(stream, current_version=expected, events=new)
        unchanged = existing - 1 if existing else StreamState.NO_STREAM
        assert client.get_current_version(stream) == unchanged


def test_repeating_an_append_with_the_same_ids_is_a_no_op(client: Any, name: str) -> None:
    stream = f"{name}-s"
    batch = events(name, 2)
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=batch)
    client.append_to_stream(stream, current_version=1, events=events(name, 1))

    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=batch)

    assert [e.id for e in client.get_stream(stream)][:2] == [e.id for e in batch]
    assert len(client.get_stream(stream)) == 3


def test_same_ids_with_other_data_are_also_taken_for_a_repeat(client: Any, name: str) -> None:
    """Why the recorder reads its append back: ids alone decide "already done"."""
    stream = f"{name}-s"
    first = events(name, 1, data=b'{"by": 1}')
    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=first)
    other = [NewEvent(type=first[0].type, data=b'{"by": 10}', id=first[0].id)]

    client.append_to_stream(stream, current_version=StreamState.NO_STREAM, events=other)

    (stored,) = client.get_stream(stream)
    assert stored.data == b'{"by": 1}'


def test_reading_a_missing_stream_is_not_found(client: Any, name: str) -> None:
    with pytest.raises(NotFound):
        client.get_stream(f"{name}-missing")


def test_reading_all_from_a_position_is_inclusive_and_subscribing_is_exclusive(
    client: Any, name: str
) -> None:
    client.append_to_stream(f"{name}-a", current_version=StreamState.NO_STREAM,
                            events=events(name, 2))
    client.append_to_stream(f"{name}-b", current_version=StreamState.NO_STREAM,
                            events=events(name, 1))
    ours = [f"{name}\\..*"]
    first = client.get_stream(f"{name}-a")[0].commit_position

    read = list(client.read_all(commit_position=first, filter_include=ours, limit=10))
    subscription = client.subscribe_to_all(commit_position=first, filter_include=ours)
    subscribed = [next(subscription), next(subscription)]
    subscription.stop()

    assert [(e.stream_name, e.stream_position) for e in read] == [
        (f"{name}-a", 0), (f"{name}-a", 1), (f"{name}-b", 0)]
    assert [e.id for e in subscribed] == [e.id for e in read[1:]]


def test_filters_select_by_type_or_stream_name_and_exclude_system_events(
    client: Any, name: str
) -> None:
    client.append_to_stream(f"{name}-a", current_version=StreamState.NO_STREAM,
                            events=events(name, 1))
    client.append_to_stream(f"{name}x-b", current_version=StreamState.NO_STREAM,
                            events=[NewEvent(type="Other", data=b"{}", id=uuid.uuid4())])
    start = client.get_stream(f"{name}-a")[0].commit_position

    by_type = list(client.read_all(commit_position=start, filter_include=[f"{name}\\..*"]))
    by_stream = list(client.read_all(commit_position=start, filter_include=[f"{name}x-.*"],
                                     filter_by_stream_name=True))
    recent = list(client.read_all(backwards=True, limit=100))

    assert [e.stream_name for e in by_type] == [f"{name}-a"]
    assert [e.type for e in by_stream] == ["Other"]
    assert not any(e.type.startswith("$") or e.type.startswith("PersistentConfig")
                   for e in recent)
    assert client.get_commit_position(filter_include=[f"{name}\\..*"]) == start


def test_catch_up_subscription_waits_for_new_events_until_stopped(client: Any, name: str) -> None:
    ours = [f"{name}\\..*"]
    subscription = client.subscribe_to_all(from_end=True, filter_include=ours)
    received: list[Any] = []

    def consume() -> None:
        received.extend(subscription)  # blocks until stopped

    consumer = threading.Thread(target=consume)
    consumer.start()
    new = events(name, 2)
    client.append_to_stream(f"{name}-a", current_version=StreamState.NO_STREAM, events=new)
    _wait_until(lambda: len(received) == 2)
    subscription.stop()
    consumer.join(5)

    assert not consumer.is_alive()
    assert [e.id for e in received] == [e.id for e in new]


def test_fake_rejects_reading_all_from_a_position_between_records() -> None:
    client = FakeEventStoreDBClient(FakeEventStoreDBServer())
    position = client.append_to_stream("s", current_version=StreamState.NO_STREAM,
                                       events=events("t", 1))

    with pytest.raises(InvalidCommitPosition):
        list(client.read_all(commit_position=position + 1))


def test_fake_retries_an_append_whose_response_was_lost_without_duplicating() -> None:
    server = FakeEventStoreDBServer()
    client = FakeEventStoreDBClient(server)
    server.lose_next_responses(1)

    client.append_to_stream("s", current_version=StreamState.NO_STREAM, events=events("t", 2))

    assert len(client.get_stream("s")) == 2


def _wait_until(condition: Any, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)
