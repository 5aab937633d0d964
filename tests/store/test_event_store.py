"""Contract of ``EventStore``: the same behaviour on every backend."""

from __future__ import annotations

import threading

import pytest

from adapters.eventstore import EventStore
from domain.errors import ConcurrencyConflict, NotFound
from tests.store.aggregates import Counter


def test_save_returns_position_of_last_event_and_get_rebuilds_the_aggregate(store: EventStore) -> None:
    counter = Counter.open("a")
    counter.bump(2)
    counter.bump(3)

    position = store.save(counter)

    assert position == store.max_position()
    loaded = store.get(counter.id)
    assert (loaded.label, loaded.total, loaded.version) == ("a", 5, 2)
    assert store.exists(counter.id)


def test_get_at_a_version_time_travels(store: EventStore) -> None:
    counter = Counter.open("a")
    counter.bump(2)
    counter.bump(3)
    store.save(counter)

    assert [store.get(counter.id, version=v).total for v in (0, 1, 2)] == [0, 2, 5]


def test_missing_aggregate_is_not_found(store: EventStore) -> None:
    with pytest.raises(NotFound):
        store.get("Counter-00000000-0000-0000-0000-000000000000")
    assert not store.exists("Counter-00000000-0000-0000-0000-000000000000")


def test_stale_version_raises_concurrency_conflict_and_records_nothing(store: EventStore) -> None:
    counter = Counter.open("a")
    store.save(counter)
    first, second = store.get(counter.id), store.get(counter.id)
    first.bump(1)
    store.save(first)
    before = store.max_position()

    second.bump(10)
    with pytest.raises(ConcurrencyConflict):
        store.save(second)

    assert store.max_position() == before
    assert store.get(counter.id).total == 1


def test_saving_two_aggregates_is_atomic(store: EventStore) -> None:
    a, b = Counter.open("a"), Counter.open("b")
    store.save(a, b)
    stale_a = store.get(a.id)
    fresh_a = store.get(a.id)
    fresh_a.bump()
    store.save(fresh_a)
    before = store.max_position()

    b = store.get(b.id)
    b.bump(5)
    stale_a.bump(7)
    with pytest.raises(ConcurrencyConflict):
        store.save(b, stale_a)

    assert store.max_position() == before
    assert store.get(b.id).total == 0


def test_read_all_is_globally_ordered_across_streams(store: EventStore) -> None:
    a, b = Counter.open("a"), Counter.open("b")
    store.save(a)
    store.save(b)
    for i in range(3):
        a.bump(i)
        store.save(a)
        b.bump(i)
        store.save(b)

    events = store.read_all()

    positions = [e.position for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [e.stream_id for e in events] == [a.id, b.id] + [a.id, b.id] * 3
    assert [type(e.event).__name__ for e in events[:3]] == ["Opened", "Opened", "Bumped"]
    assert all(e.event.originator_id == e.stream_id for e in events)


@pytest.mark.parametrize(("after", "limit", "expected"), [(0, 100, 6), (2, 100, 4), (2, 3, 3), (6, 10, 0)])
def test_read_all_pages_by_position(store: EventStore, after: int, limit: int, expected: int) -> None:
    counter = Counter.open("a")
    for _ in range(5):
        counter.bump()
    store.save(counter)
    positions = [e.position for e in store.read_all()]

    page = store.read_all(after=positions[after - 1] if after else 0, limit=limit)

    assert [e.position for e in page] == positions[after : after + limit][:expected]


def test_read_all_filters_by_topic(store: EventStore) -> None:
    counter = Counter.open("a")
    counter.bump()
    counter.close()
    store.save(counter)
    closed_topic = store.read_all()[-1].topic

    assert [e.event_name for e in store.read_all(topics=[closed_topic])] == ["Closed"]


def test_read_stream_returns_one_stream_in_version_order(store: EventStore) -> None:
    a, b = Counter.open("a"), Counter.open("b")
    a.bump()
    b.bump()
    a.close()
    store.save(a, b)

    stream = store.read_stream(a.id)

    assert [(e.version, e.event_name) for e in stream] == [(0, "Opened"), (1, "Bumped"), (2, "Closed")]
    assert [e.version for e in store.read_stream(a.id, after_version=0)] == [1, 2]


def test_event_carries_context_metadata_and_deterministic_id(store: EventStore) -> None:
    counter = Counter.open("a")
    store.save(counter)

    (stored,) = store.read_all()

    assert stored.event.metadata["actor"] == "test"
    assert stored.event.event_id == Counter.open("x", id=counter.id).pending_events[0].event_id


def test_empty_store(store: EventStore) -> None:
    assert store.max_position() == 0
    assert store.read_all() == []
    store.ping()


def test_subscription_delivers_existing_then_new_events_after_a_position(store: EventStore) -> None:
    counter = Counter.open("a")
    counter.bump()
    store.save(counter)
    first_position = store.read_all()[0].position

    with store.subscribe(after=first_position) as subscription:
        counter.bump()
        counter.close()
        later = store.save(counter)
        received = []
        while not received or received[-1].position < later:
            received.extend(subscription.next_batch(timeout=5))

    assert [e.event_name for e in received] == ["Bumped", "Bumped", "Closed"]
    assert [e.position for e in received] == [e.position for e in store.read_all(after=first_position)]


def test_subscription_iterates_and_stops(store: EventStore) -> None:
    counter = Counter.open("a")
    store.save(counter)
    received = []

    with store.subscribe(after=0) as subscription:
        def consume() -> None:
            received.extend(subscription)  # blocks until stopped

        consumer = threading.Thread(target=consume)
        consumer.start()
        for _ in range(3):
            counter.bump()
            last = store.save(counter)
        _wait_until(lambda: bool(received) and received[-1].position == last)
        subscription.stop()
        consumer.join(5)

    assert not consumer.is_alive()
    assert [e.version for e in received] == [0, 1, 2, 3]


def test_next_batch_times_out_empty(store: EventStore) -> None:
    with store.subscribe(after=0) as subscription:
        assert subscription.next_batch(timeout=0.05) == []


def _wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)
