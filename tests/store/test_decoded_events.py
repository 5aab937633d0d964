"""The store's cache of decoded events (``adapters/eventstore/decoded_events.py``) never
changes what a reader sees: reads through a warm cache equal a fresh store's decode, personal
data is kept only sealed (each read opens its own copy: an erasure shows at once), and the
cache stays bounded."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.eventstore import open_event_store
from adapters.eventstore.decoded_events import DecodedEvents
from adapters.eventstore.store import EventStore
from domain.personal_data import erased_name
from tests.store.aggregates import Counter
from tests.store.test_personal_data import ALICE, book


def _seen(store: EventStore) -> list[tuple[Any, ...]]:
    """Everything a reader gets: the log's events and every stream's aggregate."""
    events = store.read_all(limit=100_000)
    streams = sorted({e.stream_id for e in events})
    aggregates = [vars(store.get(s)) for s in streams]
    return [(e.position, e.stream_id, e.version, e.topic, type(e.event), vars(e.event)) for e in events] + [
        tuple(sorted((k, repr(v)) for k, v in a.items())) for a in aggregates]


# A script of writes: (counter index, bumps); negative bumps close it.
scripts = st.lists(st.tuples(st.integers(0, 4), st.integers(-1, 3)), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=scripts, size=st.sampled_from([0, 3, 1000]))
def test_reads_through_the_cache_equal_a_fresh_decode(tmp_path_factory: Any, script: list[tuple[int, int]],
                                                      size: int) -> None:
    path = tmp_path_factory.mktemp("decoded") / "events.sqlite3"
    warm = open_event_store("sqlite", sqlite_path=path)
    warm.app.mapper.decoded.size = size  # 0: no cache; 3: evicting all the time
    try:
        counters: dict[int, Counter] = {}
        for index, bumps in script:
            if index == 4:  # a booking that names a person; -1: that person is forgotten
                if bumps < 0:
                    warm.app.person_keys.forget(ALICE)
                else:
                    book(warm, f"{bumps}.{ALICE}", f"user:{ALICE}")
                _seen(warm)
                continue
            counter = counters.get(index)
            if counter is None:
                counter = counters[index] = Counter.open(f"c{index}")
            elif bumps < 0 and not counter.closed:
                counter.close()
            for _ in range(max(bumps, 0)):
                counter.bump(index + 1)
            warm.save(counter)
            _seen(warm)  # read between writes: the cache holds what is being appended to
        fresh = open_event_store("sqlite", sqlite_path=path)
        fresh.app.mapper.decoded.size = 0
        try:
            assert _seen(warm) == _seen(fresh)
        finally:
            fresh.close()
        assert len(warm.app.mapper.decoded) <= size
    finally:
        warm.close()


def test_a_second_read_shares_the_decoded_event() -> None:
    with open_event_store("memory") as store:
        counter = Counter.open("c")
        counter.bump(2)
        store.save(counter)
        first, second = store.read_all(), store.read_all()
        assert [a.event for a in first] == [b.event for b in second]
        assert all(a.event is b.event for a, b in zip(first, second, strict=True))
        assert store.get(counter.id).total == 2


def test_personal_data_is_kept_sealed_each_read_opens_its_own_copy_an_erasure_shows_at_once() -> None:
    with open_event_store("memory") as store:
        lab = book(store, ALICE, f"user:{ALICE}")
        assert store.get(lab).owner_id == ALICE
        first, second = store.read_all()[0].event, store.read_all()[0].event
        assert first.owner_id == second.owner_id == ALICE and first.actor == f"user:{ALICE}"
        assert first is not second  # never shared: a reader's copy is opened for it
        kept = list(store.app.mapper.decoded._entries.values())  # noqa: SLF001
        assert kept and all(entry.event is None for entry in kept)
        assert ALICE not in repr([entry.sealed for entry in kept])  # no clear value kept
        subject_id = store.app.person_keys.forget(ALICE)
        assert subject_id is not None
        assert store.get(lab).owner_id == erased_name(subject_id)
        assert store.read_all()[0].event.actor == f"user:{erased_name(subject_id)}"


def test_the_cache_is_bounded_oldest_first() -> None:
    cache = DecodedEvents(size=2)
    for version in range(3):
        cache.put("s", version, b"x", object, object())
    assert len(cache) == 2
    assert cache.get("s", 0, b"x", object) is None
    assert cache.get("s", 2, b"x", object) is not None
    assert cache.get("s", 2, b"y", object) is None  # other bytes: not the same event
