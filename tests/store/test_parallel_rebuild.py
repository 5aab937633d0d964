"""Rebuilding groups of read models in separate processes gives the one-process result."""

from __future__ import annotations

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
