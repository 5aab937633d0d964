"""Rebuilding groups of read models in separate processes gives the one-process result, and
(SQLite: each process builds in a scratch file, copied in at the end) readers see the old
model whole until each switch-over and the new one whole after it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from adapters.eventstore import open_event_store
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from projections.parallel import balanced_groups, rebuild_in_processes
from projections.projection import Projection
from projections.runner import ProjectionRunner
from tests.store.aggregates import Counter
from tests.store.projections_for_tests import CounterSummary, EventLog


TABLES = ("counters", "applied", "log")
SWITCHES: list[dict[str, Any]] = []  # what WatchedModels saw at each switch-over (this process)


def snapshot(models: Any, tables: Sequence[str] = TABLES) -> dict[str, list[dict[str, Any]]]:
    return {t: models.query(t, limit=1000).items for t in tables}


class WatchedModels(SqliteReadModelStore):
    """Records what another connection reads just before and just after each switch-over."""

    def promote(self, pairs: Sequence[tuple[Any, Any]], shadow_checkpoint: str, checkpoint: str) -> bool:
        reader = SqliteReadModelStore(self.path)
        reader.ensure_tables([table for pair in pairs for table in pair])  # declared to this connection
        live = [live.name for _shadow, live in pairs]
        try:
            seen = {"projection": checkpoint, "before": snapshot(reader, live),
                    "shadow_rows": {shadow.name: reader.count(shadow.name) for shadow, _live in pairs}}
            promoted = super().promote(pairs, shadow_checkpoint, checkpoint)
            seen["after"] = snapshot(reader, live)
        finally:
            reader.close()
        SWITCHES.append(seen)
        return promoted


def open_watched_stores(events: str, models: str) -> tuple[Any, Any, list[Projection]]:
    return open_event_store("sqlite", sqlite_path=events), WatchedModels(models), [CounterSummary(), EventLog()]


def open_stores(events: str, models: str) -> tuple[Any, Any, list[Projection]]:
    return open_event_store("sqlite", sqlite_path=events), SqliteReadModelStore(models), [CounterSummary(), EventLog()]


def test_groups_are_balanced_by_rebuild_weight() -> None:
    class Heavy(EventLog):
        name = "heavy"
        rebuild_weight = 3.0

    groups = balanced_groups([CounterSummary(), EventLog(), Heavy()], 2)
    assert sorted(groups) == [["counter_summary", "event_log"], ["heavy"]]
    assert balanced_groups([CounterSummary()], 4) == [["counter_summary"]]


def test_a_rebuild_in_two_processes_equals_the_incremental_models(tmp_path: Path) -> None:
    events, models_path = str(tmp_path / "events.sqlite3"), str(tmp_path / "models.sqlite3")
    store, models = open_event_store("sqlite", sqlite_path=events), SqliteReadModelStore(models_path)
    counters = [Counter.open(f"c{i}") for i in range(4)]
    for round_ in range(6):
        for counter in counters:
            counter.bump(round_)
            store.save(counter)
    runner = ProjectionRunner(store, models, [CounterSummary(), EventLog()], batch_size=7)
    runner.catch_up()
    before = {t: models.query(t, limit=1000).items for t in ("counters", "applied", "log")}

    replayed = rebuild_in_processes(partial(open_stores, events, models_path), runner.projections, 2, batch_size=5)

    assert replayed == len(store.read_all(limit=1000))
    assert {t: models.query(t, limit=1000).items for t in ("counters", "applied", "log")} == before
    assert models.checkpoint("counter_summary__shadow") is None and models.checkpoint("event_log__shadow") is None
    models.close()
    store.close()


def test_readers_see_the_old_models_whole_until_the_switch_over_then_the_new_ones(tmp_path: Path) -> None:
    events, models_path = str(tmp_path / "events.sqlite3"), str(tmp_path / "models.sqlite3")
    store, models = open_event_store("sqlite", sqlite_path=events), SqliteReadModelStore(models_path)
    counters = [Counter.open(f"c{i}") for i in range(5)]
    store.save(*counters)
    for counter in counters[:3]:
        counter.bump(1)
    store.save(*counters)
    projections = [CounterSummary(), EventLog()]
    ProjectionRunner(store, models, projections).catch_up()
    old = snapshot(models)
    for round_ in range(8):  # appended after the old models were built: only the new ones hold them
        for counter in counters:
            counter.bump(round_ + 2)
        store.save(*counters)
    reference = SqliteReadModelStore(tmp_path / "reference.sqlite3")
    ProjectionRunner(store, reference, projections).catch_up()
    new = snapshot(reference)
    assert old != new and all(old[t] != new[t] for t in TABLES)

    reader, seen, stop = SqliteReadModelStore(models_path), [], threading.Event()
    reader.ensure_tables([t for p in projections for t in p.tables])

    def watch() -> None:  # another connection polls the served tables all along
        while not stop.is_set():
            seen.append(snapshot(reader))

    watcher = threading.Thread(target=watch)
    watcher.start()
    SWITCHES.clear()
    try:
        rebuild_in_processes(partial(open_watched_stores, events, models_path), projections, 2, batch_size=4)
    finally:
        stop.set()
        watcher.join()
    seen.append(snapshot(reader))

    assert sorted(s["projection"] for s in SWITCHES) == ["counter_summary", "event_log"]
    for switch in SWITCHES:
        assert switch["before"] == {t: old[t] for t in switch["before"]}  # whole old model before
        assert switch["after"] == {t: new[t] for t in switch["after"]}  # whole new one after
        assert switch["shadow_rows"] == {f"{t}__shadow": len(new[t]) for t in switch["before"]}  # copied in whole
    assert all(view[t] in (old[t], new[t]) for view in seen for t in TABLES)  # never half-built
    assert seen[-1] == new
    assert not list(tmp_path.glob("*.scratch*"))  # the scratch files are gone
    for opened in (reader, reference, models):
        opened.close()
    store.close()
