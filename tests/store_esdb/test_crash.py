"""Exactly-once projections across a killed process, with events in a real EventStoreDB
(an in-process fake does not outlive its process) and read models in SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.projections_for_tests import CounterSummary
from tests.store.test_projections import (
    assert_consistent_prefix,
    assert_each_event_applied_once,
    summary,
    write_history,
)
from tests.store_esdb.conftest import ESDB_URI, NO_SERVER, EsdbBackend, new_backend

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not ESDB_URI, reason=NO_SERVER)
@pytest.mark.parametrize("exit_after", [1, 9])
def test_exactly_once_across_a_killed_process(tmp_path: Path, exit_after: int) -> None:
    backend: EsdbBackend = new_backend("esdb", tmp_path)
    try:
        store = backend.event_store()
        expected = write_history(store, counters=4, bumps=4)
        settings = json.dumps(backend.settings())

        def run(exit_at: int) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "tests.store_esdb.crash_runner", settings, str(exit_at), "5"],
                cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
            )

        crashed = run(exit_after)
        assert crashed.returncode == 3, crashed.stderr
        models = backend.read_models()
        models.ensure_tables(CounterSummary.tables)
        checkpoint = models.checkpoint("counter_summary")
        position = checkpoint.position if checkpoint else 0
        assert position < store.max_position()
        assert_consistent_prefix(models, store, position)  # type: ignore[arg-type]

        finished = run(0)
        assert finished.returncode == 0, finished.stderr

        assert {k: v[1] for k, v in summary(models).items()} == expected
        assert_each_event_applied_once(models, store)
    finally:
        backend.close()
