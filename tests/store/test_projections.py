"""Projection runner: exactly-once, rebuild, version changes, waiting, several runners."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.eventstore import EventStore
from projections.checkpoint import wait_for_checkpoint
from projections.parking import list_parked
from projections.runner import ProjectionRunner
from projections.targets import Target
from tests.store.aggregates import Counter
from tests.store.conftest import Backend
from tests.store.projections_for_tests import CounterSummary, CounterSummaryV2, EventLog

ROOT = Path(__file__).resolve().parents[2]


def write_history(store: EventStore, counters: int = 3, bumps: int = 4) -> dict[str, int]:
    """Interleaved saves over several counters; returns the expected totals."""
    aggregates = [Counter.open(f"c{i}") for i in range(counters)]
    for aggregate in aggregates:
        store.save(aggregate)
    for round_ in range(bumps):
        for i, aggregate in enumerate(aggregates):
            aggregate.bump(i + round_)
            store.save(aggregate)
    aggregates[0].close()
    store.save(aggregates[0])
    return {a.id: a.total for a in aggregates}


def summary(models: Any) -> dict[str, tuple[str, int, bool, int]]:
    docs = models.query("counters", limit=10_000).items
    return {d["id"]: (d["label"], d["total"], d["closed"], d["events"]) for d in docs}


def assert_each_event_applied_once(models: Any, store: EventStore) -> None:
    times = [d["times"] for d in models.query("applied", limit=100_000).items]
    assert len(times) == len(store.read_all(limit=100_000))
    assert set(times) == {1}


def test_catch_up_projects_every_event_once_with_its_checkpoint(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    expected = write_history(store)
    runner = ProjectionRunner(store, models, [CounterSummary(), EventLog()], batch_size=4)

    applied = runner.catch_up()

    assert applied == len(store.read_all())
    assert {k: v[1] for k, v in summary(models).items()} == expected
    assert models.checkpoint("counter_summary").position == store.max_position()
    assert runner.lag() == 0
    assert [d["position"] for d in models.query("log", order_by="position", limit=1000).items] == [
        e.position for e in store.read_all()
    ]
    assert_each_event_applied_once(models, store)


def test_rebuild_equals_incremental_result(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    runner = ProjectionRunner(store, models, [CounterSummary()], batch_size=3)
    write_history(store, bumps=2)
    runner.catch_up()
    write_history(store, counters=2, bumps=3)
    runner.catch_up()
    incremental = summary(models)
    progress: list[tuple[int, int]] = []

    replayed = runner.rebuild("counter_summary", progress=lambda done, total: progress.append((done, total)))

    assert summary(models) == incremental
    assert replayed == len(store.read_all())
    assert progress[-1] == (store.max_position(), store.max_position())
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert_each_event_applied_once(models, store)


def test_changed_version_is_rebuilt_at_start(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    expected = write_history(store)
    ProjectionRunner(store, models, [CounterSummary()]).catch_up()

    runner = ProjectionRunner(store, models, [CounterSummaryV2()])
    assert runner.prepare() == ["counter_summary"]
    runner.catch_up()

    assert {k: v[1] for k, v in summary(models).items()} == {a: 2 * t for a, t in expected.items()}
    assert models.checkpoint("counter_summary").version == 2
    assert ProjectionRunner(store, models, [CounterSummaryV2()]).prepare() == []


def test_event_whose_handler_fails_is_parked_and_the_rest_goes_on(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    expected = write_history(store)

    class Broken(CounterSummary):
        broken = True

        def handle(self, event, tx):  # type: ignore[no-untyped-def]
            super().handle(event, tx)  # effects applied to the batch's documents...
            if event.version == 3 and event.stream_id == first and self.broken:
                raise RuntimeError("cannot apply this one")  # ...and dropped with it

    first = store.read_all()[0].stream_id
    runner = ProjectionRunner(store, models, [Broken()], batch_size=5)
    runner.catch_up()

    assert models.checkpoint("counter_summary").position == store.max_position()
    parked = list_parked(models)
    assert [(p.projection, p.stream_id, p.version, p.stage) for p in parked] == [
        ("counter_summary", first, 3, "apply")]
    assert "RuntimeError: cannot apply this one" in parked[0].error
    totals = {k: v[1] for k, v in summary(models).items()}
    assert totals != expected and {k: t for k, t in totals.items() if k != first} == {
        k: t for k, t in expected.items() if k != first}

    Broken.broken = False  # fixed: a retry applies it now
    runner.retry_parked("counter_summary", parked[0].position)

    assert list_parked(models) == []
    assert list_parked(models, status="retried")[0].position == parked[0].position
    assert {k: v[1] for k, v in summary(models).items()} == expected
    assert_each_event_applied_once(models, store)


def assert_consistent_prefix(models: Any, store: EventStore, position: int) -> None:
    """The read model holds exactly the effects of the events up to ``position``."""
    applied = {d["position"] for d in models.query("applied", limit=100_000).items}
    assert applied == {e.position for e in store.read_all(limit=100_000) if e.position <= position}


@pytest.mark.parametrize("exit_after", [1, 9])
def test_exactly_once_across_a_killed_process(backend: Backend, exit_after: int) -> None:
    if backend.kind == "memory":
        pytest.skip("an in-memory store does not survive its process")
    store = backend.event_store()
    expected = write_history(store, counters=4, bumps=4)
    settings = json.dumps(backend.settings())

    def run(exit_at: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.store.crash_runner", settings, str(exit_at), "5"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )

    crashed = run(exit_after)
    assert crashed.returncode == 3, crashed.stderr
    models = backend.read_models()
    models.ensure_tables(CounterSummary.tables)
    checkpoint = models.checkpoint("counter_summary")
    position = checkpoint.position if checkpoint else 0
    assert position < store.max_position()
    assert_consistent_prefix(models, store, position)

    finished = run(0)
    assert finished.returncode == 0, finished.stderr

    assert {k: v[1] for k, v in summary(models).items()} == expected
    assert_each_event_applied_once(models, store)


def test_background_runner_wakes_waiters_when_position_commits(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    runner = ProjectionRunner(store, models, [CounterSummary(), EventLog()])
    runner.start()
    try:
        counter = Counter.open("live")
        position = store.save(counter)
        assert runner.wait_for_position(position, timeout=10)
        assert models.get("counters", counter.id)["label"] == "live"

        counter.bump(5)
        position = store.save(counter)
        assert wait_for_checkpoint(models, ["counter_summary", "event_log"], position, timeout=10)
        assert models.get("counters", counter.id)["total"] == 5
        assert runner.lag() == 0
        assert not runner.wait_for_position(position + 1000, timeout=0.01)
    finally:
        runner.stop()
    assert not runner.running


def test_two_runners_on_the_same_read_models_never_duplicate(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    other_models = backend.read_models()
    first = ProjectionRunner(store, models, [CounterSummary()], batch_size=2)
    second = ProjectionRunner(backend.event_store(), other_models, [CounterSummary()], batch_size=3)
    first.start()
    second.start()
    try:
        expected = write_history(store, counters=3, bumps=5)
        position = store.max_position()
        assert first.wait_for_position(position, timeout=10)
        assert wait_for_checkpoint(other_models, ["counter_summary"], position, timeout=10)
    finally:
        first.stop()
        second.stop()
    assert {k: v[1] for k, v in summary(models).items()} == expected
    assert_each_event_applied_once(models, store)


def test_rebuild_next_to_a_running_runner_leaves_no_hole(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    write_history(store)
    follower = ProjectionRunner(store, models, [CounterSummary()], batch_size=2)
    follower.start()
    try:
        assert follower.wait_for_position(store.max_position(), timeout=10)
        # e.g. `lablet projections rebuild` in another process, while the server follows on
        ProjectionRunner(store, backend.read_models(), [CounterSummary()], batch_size=2).rebuild(
            "counter_summary"
        )
        expected = write_history(store, counters=2, bumps=2)
        assert wait_for_checkpoint(models, ["counter_summary"], store.max_position(), timeout=10)
    finally:
        follower.stop()
    assert {k: v[1] for k, v in summary(models).items() if k in expected} == expected
    assert_each_event_applied_once(models, store)


def test_runner_whose_checkpoint_was_reset_elsewhere_replays_from_it(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    write_history(store)
    stale = ProjectionRunner(store, models, [CounterSummary()], batch_size=4)
    stale.catch_up()
    # Another process resets the projection (drops tables, checkpoint 0) and dies.
    ProjectionRunner(store, backend.read_models(), [CounterSummary()])._reset(Target.live(CounterSummary()))
    expected = write_history(store, counters=2, bumps=2)

    stale.catch_up()  # its own position is far ahead of the stored checkpoint

    assert {k: v[1] for k, v in summary(models).items() if k in expected} == expected
    assert len(summary(models)) == 5
    assert_each_event_applied_once(models, store)
