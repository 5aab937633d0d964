"""Rebuilds: equal to the incrementally built models, built in a shadow, switched over whole."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.runner import ProjectionRunner
from tests.store.aggregates import Counter
from tests.store.conftest import Backend
from tests.store.projections_for_tests import CounterSummary, CounterSummaryV2, EventLog

TABLES = ("counters", "applied", "log")

# One step of a random history: open a counter, bump one (by), close one, or let the runner catch up.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 0)),
        st.tuples(st.just("bump"), st.integers(-5, 50)),
        st.tuples(st.just("close"), st.integers(0, 0)),
        st.tuples(st.just("catch_up"), st.integers(1, 7)),
    ),
    min_size=1, max_size=40,
)


def snapshot(models: Any) -> dict[str, dict[str, Any]]:
    return {t: {d.get("id") or d.get("position") or str(d): d for d in models.query(t, limit=10_000).items}
            for t in TABLES}


def play(store: Any, history: list[tuple[str, int]], on_catch_up: Callable[[int], None]) -> None:
    counters: list[Counter] = []
    for pick, (step, value) in enumerate(history):
        if step == "open" or not counters:
            counters.append(Counter.open(f"c{len(counters)}"))
            store.save(counters[-1])
        elif step == "catch_up":
            on_catch_up(value)
        else:
            counter = counters[pick % len(counters)]
            counter.bump(value) if step == "bump" else counter.close()
            store.save(counter)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, kind=st.sampled_from(["memory", "sqlite"]), carry_limit=st.sampled_from([1, 3, 20_000]))
def test_rebuilt_read_models_equal_the_incrementally_built_ones(make_backend: Callable[[str], Backend],
                                                                history: list[tuple[str, int]], kind: str,
                                                                carry_limit: int) -> None:
    backend = make_backend(kind)
    store, models = backend.event_store(), backend.read_models()
    runners: dict[int, ProjectionRunner] = {}

    def catch_up(batch_size: int) -> None:  # followers with different batch sizes, one after another
        runner = runners.setdefault(batch_size, ProjectionRunner(store, models, [CounterSummary(), EventLog()],
                                                                 batch_size=batch_size))
        runner.catch_up()

    play(store, history, catch_up)
    catch_up(3)
    incremental = snapshot(models)

    rebuilding = ProjectionRunner(store, models, [CounterSummary(), EventLog()], batch_size=4)
    rebuilding.applier.carry_limit = carry_limit  # documents kept between the rebuild's batches
    rebuilding.rebuild_all()

    assert snapshot(models) == incremental
    assert {d["times"] for d in incremental["applied"].values()} <= {1}


def test_a_new_version_is_built_in_a_shadow_and_readers_never_see_it_half_built(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    counters = [Counter.open(f"c{i}") for i in range(6)]
    for round_ in range(8):
        for counter in counters:
            counter.bump(round_ + 1)
            store.save(counter)
    ProjectionRunner(store, models, [CounterSummary()]).catch_up()
    old = {d["id"]: d["total"] for d in models.query("counters", limit=100).items}
    new = {key: 2 * total for key, total in old.items()}  # V2 counts bumps double

    seen: list[dict[str, int]] = []
    upgraded = ProjectionRunner(store, backend.read_models(), [CounterSummaryV2()], batch_size=3)
    done = threading.Event()

    def read_while_rebuilding() -> None:
        reader = backend.read_models()
        reader.ensure_tables(CounterSummary.tables)
        while not done.is_set():
            seen.append({d["id"]: d["total"] for d in reader.query("counters", limit=100).items})

    thread = threading.Thread(target=read_while_rebuilding)
    thread.start()
    try:
        upgraded.start()  # the version changed: shadow rebuild, then the switch
        assert upgraded.wait_rebuilt(timeout=30)
    finally:
        done.set()
        thread.join(10)
        upgraded.stop()

    assert {d["id"]: d["total"] for d in models.query("counters", limit=100).items} == new
    assert models.checkpoint("counter_summary").version == 2
    assert models.checkpoint("counter_summary__shadow") is None
    assert seen and all(view in (old, new) for view in seen)  # never half of the new model
    assert seen[0] == old


def test_a_rebuild_keeps_serving_and_reports_its_progress(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    counter = Counter.open("a")
    for _ in range(30):
        counter.bump(1)
    store.save(counter)
    ProjectionRunner(store, models, [CounterSummary()]).catch_up()
    runner = ProjectionRunner(store, models, [CounterSummaryV2()], batch_size=5)
    reports: list[dict[str, Any]] = []

    def progress(done: int, total: int) -> None:
        reports.append(runner.rebuilding()["counter_summary"])
        assert models.get("counters", counter.id)["total"] == 30  # the old model serves meanwhile

    assert runner.prepare() == ["counter_summary"]
    assert runner.position() == store.max_position()  # nothing followed to wait for meanwhile
    runner.catch_up(progress)

    assert models.get("counters", counter.id)["total"] == 60
    assert [r["position"] for r in reports] == sorted(r["position"] for r in reports)
    assert reports[-1]["remaining"] == 0 and reports[0]["head"] == store.max_position()
    assert runner.rebuilding() == {}


def test_a_rebuild_asked_of_a_running_runner_keeps_the_live_model_current(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    counter = Counter.open("a")
    for _ in range(40):
        counter.bump(1)
    store.save(counter)
    runner = ProjectionRunner(store, models, [CounterSummary()], batch_size=4)
    runner.start()
    try:
        assert runner.wait_for_position(store.max_position(), 10)
        rebuilding = threading.Thread(target=runner.rebuild, args=("counter_summary",))
        rebuilding.start()
        counter.bump(2)
        position = store.save(counter)
        assert runner.wait_for_position(position, 10)  # followed meanwhile
        rebuilding.join(30)
        assert not rebuilding.is_alive()
        assert runner.is_followed("counter_summary") and runner.rebuilding() == {}
        counter.bump(3)
        position = store.save(counter)
        assert runner.wait_for_position(position, 10)
    finally:
        runner.stop()
    assert models.get("counters", counter.id)["total"] == 45
    assert {d["times"] for d in models.query("applied", limit=1000).items} == {1}


def test_a_promoted_table_has_its_indexes_under_the_live_names(backend: Backend) -> None:
    if backend.kind == "memory":
        return
    store, models = backend.event_store(), backend.read_models()
    counter = Counter.open("a")
    counter.bump(1)
    store.save(counter)
    ProjectionRunner(store, models, [CounterSummary()]).rebuild_all()

    if backend.kind == "sqlite":
        names = {row[0] for row in models._writer.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    else:
        with models._pool.connection() as conn:
            names = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                                                   [backend.schema])}
    assert {"rm_counters_ix_label", "rm_counters_ix_total", "rm_counters_ix_closed", "rm_applied_ix_times"} <= names
    assert not [n for n in names if "__shadow" in n]
    assert models.query("counters", where={"label": "a"}).items[0]["total"] == 1
