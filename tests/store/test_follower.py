"""Processor follower: at-least-once, checkpoint after success, retries, resume after crash."""

from __future__ import annotations

import time
from typing import Any

from processors.follower import Follower
from projections.backoff import Backoff
from projections.events import StoredEvent
from tests.store.aggregates import Counter
from tests.store.conftest import Backend

FAST = Backoff(initial=0.001, maximum=0.01)


def history(store: Any, n: int = 6) -> list[int]:
    counter = Counter.open("f")
    for _ in range(n - 1):
        counter.bump()
    store.save(counter)
    return [e.position for e in store.read_all()]


def test_handles_every_event_in_order_and_stores_the_checkpoint(backend: Backend) -> None:
    store, checkpoints = backend.event_store(), backend.read_models()
    positions = history(store)
    handled: list[int] = []

    follower = Follower("scheduler", store, checkpoints, lambda e: handled.append(e.position))
    assert follower.catch_up() == len(positions)

    assert handled == positions
    assert checkpoints.load_checkpoint("scheduler") == positions[-1]
    assert Follower("scheduler", store, checkpoints, handled.append).catch_up() == 0


def test_checkpoint_stops_before_a_failing_event_and_resumes_from_it(backend: Backend) -> None:
    store, checkpoints = backend.event_store(), backend.read_models()
    positions = history(store)
    handled: list[int] = []

    def crash_on_fourth(event: StoredEvent) -> None:
        if event.position == positions[3]:
            raise RuntimeError("process died")
        handled.append(event.position)

    first = Follower("controller", store, checkpoints, crash_on_fourth)
    try:
        first.catch_up()
    except RuntimeError:
        pass
    assert checkpoints.load_checkpoint("controller") == positions[2]

    restarted = Follower("controller", store, checkpoints, lambda e: handled.append(e.position))
    restarted.catch_up()

    assert handled == positions  # nothing lost, the failed one handled after restart


def test_background_follower_retries_a_failing_handler_until_it_succeeds(backend: Backend) -> None:
    store, checkpoints = backend.event_store(), backend.read_models()
    positions = history(store, n=4)
    attempts: dict[int, int] = {}
    handled: list[int] = []

    def flaky(event: StoredEvent) -> None:
        attempts[event.position] = attempts.get(event.position, 0) + 1
        if event.position == positions[1] and attempts[event.position] < 3:
            raise ConnectionError("CML unreachable")
        handled.append(event.position)

    follower = Follower("dispatcher", store, checkpoints, flaky, backoff=FAST)
    follower.start()
    try:
        assert follower.wait_for_position(positions[-1], timeout=10)
        counter = store.get(store.read_all()[0].stream_id)
        counter.bump()
        later = store.save(counter)
        assert follower.wait_for_position(later, timeout=10)
    finally:
        follower.stop()

    assert handled == [*positions, later]
    assert attempts[positions[1]] == 3 and follower.failures == 2
    assert isinstance(follower.last_error, ConnectionError)
    assert checkpoints.load_checkpoint("dispatcher") == later
    assert follower.lag() == 0


def test_stopping_while_an_event_keeps_failing_keeps_it_for_next_time(backend: Backend) -> None:
    store, checkpoints = backend.event_store(), backend.read_models()
    positions = history(store, n=3)
    seen: list[int] = []

    def always_fails_on_last(event: StoredEvent) -> None:
        seen.append(event.position)
        if event.position == positions[-1]:
            raise RuntimeError("down")

    follower = Follower("autoscaler", store, checkpoints, always_fails_on_last, backoff=FAST)
    follower.start()
    try:
        assert follower.wait_for_position(positions[-2], timeout=10)
        while seen.count(positions[-1]) < 2:
            time.sleep(0.001)
    finally:
        follower.stop()

    assert checkpoints.load_checkpoint("autoscaler") == positions[-2]
    again: list[int] = []
    Follower("autoscaler", store, checkpoints, lambda e: again.append(e.position)).catch_up()
    assert again == [positions[-1]]


def test_topic_filter_only_delivers_matching_events(backend: Backend) -> None:
    store, checkpoints = backend.event_store(), backend.read_models()
    counter = Counter.open("t")
    counter.bump()
    counter.close()
    store.save(counter)
    closed = [e for e in store.read_all() if e.event_name == "Closed"]
    names: list[str] = []

    Follower("closer", store, checkpoints, lambda e: names.append(e.event_name),
             topics=[closed[0].topic]).catch_up()

    assert names == ["Closed"]
    assert checkpoints.load_checkpoint("closer") == closed[0].position
