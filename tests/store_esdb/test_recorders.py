"""What is particular to EventStoreDB: stream and type names, expected revisions, the
non-atomic multi-aggregate save, retries, foreign events, positions, snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from esdbclient import NewEvent, StreamState
from eventsourcing.domain import CanSnapshotAggregate, MetaDomainEvent
from eventsourcing.persistence import (
    InfrastructureFactoryError,
    IntegrityError,
    NotSupportedError,
    StoredEvent,
)

import adapters.eventstore.esdb.subscription as esdb_subscription
from adapters.eventstore import EventStore, open_event_store
from adapters.eventstore.application import LrmApplication
from adapters.eventstore.esdb import Factory, PartialSaveError, esdb_env
from adapters.eventstore.esdb.fake_client import (
    FakeEventStoreDBClient,
    FakeEventStoreDBServer,
    drop_fake_server,
    fake_server,
)
from adapters.eventstore.subscription import EventSubscription
from domain.base import event_id
from domain.errors import ConcurrencyConflict
from tests.store.aggregates import Counter


class LrmSnapshot(CanSnapshotAggregate[str], metaclass=MetaDomainEvent):
    originator_id: str
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]


class SnapshottingApplication(LrmApplication):
    snapshot_class = LrmSnapshot


@pytest.fixture
def server_name() -> Iterator[str]:
    name = f"r{uuid.uuid4().hex[:12]}"
    yield name
    drop_fake_server(name)


@pytest.fixture
def server(server_name: str) -> FakeEventStoreDBServer:
    return fake_server(server_name)


@pytest.fixture
def client(server: FakeEventStoreDBServer) -> FakeEventStoreDBClient:
    return FakeEventStoreDBClient(server)


@pytest.fixture
def open_store(server_name: str) -> Iterator[Any]:
    opened: list[EventStore] = []

    def open_(namespace: str = "") -> EventStore:
        store = open_event_store("esdb", esdb_uri=f"fake://{server_name}", schema=namespace)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def test_a_stream_per_aggregate_named_by_its_id_with_topics_as_types_and_derived_ids(
    open_store: Any, client: FakeEventStoreDBClient
) -> None:
    store = open_store()
    counter = Counter.open("a")
    counter.bump()
    store.save(counter)

    stored = client.get_stream(counter.id)

    assert counter.id.startswith("Counter-")  # so the server's $ce-Counter stream works
    assert [e.type for e in stored] == [e.topic for e in store.read_stream(counter.id)]
    assert [e.id for e in stored] == [event_id(counter.id, 0), event_id(counter.id, 1)]
    assert {e.content_type for e in stored} == {"application/json"}


def test_a_namespace_prefixes_streams_and_types_and_hides_other_namespaces(
    open_store: Any, client: FakeEventStoreDBClient
) -> None:
    blue, green, plain = open_store("blue"), open_store("green"), open_store()
    for store in (blue, green, plain):
        store.save(Counter.open("x"))

    (only,) = blue.read_all()
    stored = client.get_stream(f"blue/{only.stream_id}")

    assert stored[0].type == f"blue/{only.topic}"
    assert [len(s.read_all()) for s in (blue, green, plain)] == [1, 1, 1]
    assert len({blue.max_position(), green.max_position(), plain.max_position()}) == 3


def test_foreign_and_system_events_are_not_ours(
    open_store: Any, client: FakeEventStoreDBClient
) -> None:
    store = open_store()
    counter = Counter.open("a")
    store.save(counter)
    for stream, type_ in [("order-1", "OrderPlaced"), ("$stats-x", "$statsCollected"),
                          ("other/Counter-1", "other/tests.store.aggregates:Counter.Opened")]:
        client.append_to_stream(stream, current_version=StreamState.ANY,
                                events=[NewEvent(type=type_, data=b"{}", id=uuid.uuid4())])

    assert [e.stream_id for e in store.read_all()] == [counter.id]
    assert store.max_position() == store.read_all()[0].position


def test_a_stale_write_whose_derived_ids_collide_is_a_conflict_not_a_no_op(
    open_store: Any, client: FakeEventStoreDBClient
) -> None:
    """The server takes same ids for a repeat even with other data: we read back."""
    store = open_store()
    counter = Counter.open("a")
    store.save(counter)
    first, second = store.get(counter.id), store.get(counter.id)
    first.bump(1)
    store.save(first)
    second.bump(10)  # same stream, same version: same event id as first's bump

    with pytest.raises(ConcurrencyConflict):
        store.save(second)

    assert [e.event.by for e in store.read_stream(counter.id)[1:]] == [1]


def test_a_writer_between_the_check_and_the_second_append_leaves_a_partial_save(
    open_store: Any, server: FakeEventStoreDBServer
) -> None:
    store = open_store()
    a, b = Counter.open("a"), Counter.open("b")
    store.save(a, b)
    a, b = store.get(a.id), store.get(b.id)
    a.bump(1)
    b.bump(2)

    def sneak_in(stream: str) -> None:
        if stream == b.id:
            server.on_append = None
            other = store.get(b.id)
            other.bump(100)
            store.save(other)

    server.on_append = sneak_in
    with pytest.raises(ConcurrencyConflict) as raised:
        store.save(a, b)

    assert isinstance(raised.value.__cause__, PartialSaveError)
    assert raised.value.__cause__.appended == (a.id,)
    assert (store.get(a.id).total, store.get(b.id).total) == (1, 100)


def test_repeating_a_multi_aggregate_save_that_already_happened_is_accepted(
    open_store: Any,
) -> None:
    store = open_store()
    a, b = Counter.open("a"), Counter.open("b")
    a.bump()
    pending = [store.app.mapper.to_stored_event(e) for e in [*a.collect_events(),
                                                               *b.collect_events()]]
    recorder = store.app.recorder

    first = recorder.insert_events(pending)
    again = recorder.insert_events(pending)  # e.g. the process died before it knew

    assert again == first
    assert len(store.read_all()) == 3


def test_a_lost_append_response_is_retried_without_duplicates(
    open_store: Any, server: FakeEventStoreDBServer
) -> None:
    store = open_store()
    counter = Counter.open("a")
    counter.bump()
    server.lose_next_responses(1)

    position = store.save(counter)

    assert [e.version for e in store.read_all()] == [0, 1]
    assert position == store.max_position()


def test_a_stale_version_in_a_multi_aggregate_save_writes_nothing(open_store: Any) -> None:
    store = open_store()
    a, b = Counter.open("a"), Counter.open("b")
    store.save(a, b)
    stale_b = store.get(b.id)
    fresh_b = store.get(b.id)
    fresh_b.bump()
    store.save(fresh_b)
    a = store.get(a.id)
    a.bump()
    stale_b.bump()

    with pytest.raises(ConcurrencyConflict) as raised:
        store.save(a, stale_b)

    assert not isinstance(raised.value.__cause__, PartialSaveError)
    assert store.get(a.id).version == 0


@pytest.mark.parametrize(
    ("gt", "lte", "desc", "limit", "versions"),
    [
        (None, None, False, None, [0, 1, 2, 3, 4, 5]),
        (2, None, False, None, [3, 4, 5]),
        (None, 2, False, None, [0, 1, 2]),
        (1, 3, False, None, [2, 3]),
        (1, 4, False, 2, [2, 3]),
        (None, None, True, None, [5, 4, 3, 2, 1, 0]),
        (None, None, True, 2, [5, 4]),
        (2, None, True, None, [5, 4, 3]),
        (None, 3, True, None, [3, 2, 1, 0]),
        (1, 4, True, 2, [4, 3]),
        (None, 99, True, 1, [5]),
        (5, None, False, None, []),
        (3, 3, False, None, []),
        (None, -1, False, None, []),
    ],
)
def test_select_events_by_version_range(open_store: Any, gt: Any, lte: Any, desc: bool,
                                        limit: Any, versions: list[int]) -> None:
    store = open_store()
    counter = Counter.open("a")
    for _ in range(5):
        counter.bump()
    store.save(counter)

    selected = store.app.recorder.select_events(counter.id, gt=gt, lte=lte, desc=desc, limit=limit)

    assert [e.originator_version for e in selected] == versions
    assert store.app.recorder.select_events("Counter-missing") == []


def test_reading_after_a_position_between_records_reads_what_follows(open_store: Any) -> None:
    store = open_store()
    counter = Counter.open("a")
    counter.bump()
    counter.bump()
    store.save(counter)
    positions = [e.position for e in store.read_all()]

    after_gap = store.read_all(after=positions[0] + 1)

    assert [e.position for e in after_gap] == positions[1:]


def test_snapshots_live_in_their_own_streams_and_stay_out_of_the_log(
    server_name: str, client: FakeEventStoreDBClient
) -> None:
    app = SnapshottingApplication(env={**esdb_env(f"fake://{server_name}"), "IS_SNAPSHOTTING_ENABLED": "y"})
    counter = Counter.open("a")
    counter.bump(2)
    app.save(counter)
    app.take_snapshot(counter.id)
    loaded = app.repository.get(counter.id)
    loaded.bump(3)
    app.save(loaded)
    app.take_snapshot(counter.id)

    snapshots = client.get_stream(f"snapshot-{counter.id}")

    assert all(s.type.startswith("snapshot/") for s in snapshots) and len(snapshots) == 2
    assert [n.originator_version for n in app.recorder.select_notifications(0, 100)] == [0, 1, 2]
    assert app.repository.get(counter.id).total == 5
    assert app.repository.get(counter.id, version=1).total == 2  # older than the last snapshot
    assert app.snapshots is not None
    latest = list(app.snapshots.get(counter.id, desc=True, limit=1, lte=1))
    assert [s.originator_version for s in latest] == [1]
    app.close()


def test_the_subscription_listens_again_after_the_server_drops_it(
    open_store: Any, server: FakeEventStoreDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(esdb_subscription, "RESUBSCRIBE_DELAY", 0.01)
    store = open_store()
    counter = Counter.open("a")
    store.save(counter)
    received: list[int] = []

    # Without EventStore's safety poll, which would hide a deaf listener.
    inner = store.app.recorder.subscribe(gt=0)
    with EventSubscription(inner, store._decode) as subscription:
        received.extend(e.version for e in subscription.next_batch(timeout=5))
        server.drop_subscriptions()
        for _ in range(3):
            counter.bump()
            store.save(counter)
            received.extend(e.version for e in subscription.next_batch(timeout=5))

    assert received == [0, 1, 2, 3]


def test_factory_needs_a_uri_and_keeps_tracking_out_of_eventstoredb(server_name: str) -> None:
    with pytest.raises(InfrastructureFactoryError):
        Factory({})
    with pytest.raises(ValueError, match="namespace"):
        esdb_env("fake://x", namespace="not/ok")
    factory = Factory(esdb_env(f"fake://{server_name}"))
    with pytest.raises(NotSupportedError):
        factory.tracking_recorder()
    with pytest.raises(NotSupportedError):
        factory.process_recorder()
    factory.close()


def test_versions_of_one_aggregate_must_follow_each_other(open_store: Any) -> None:
    recorder = open_store().app.recorder
    gap = [StoredEvent("Counter-1", 0, "t:T", b"{}"), StoredEvent("Counter-1", 2, "t:T", b"{}")]

    with pytest.raises(IntegrityError):
        recorder.insert_events(gap)
