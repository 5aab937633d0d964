"""What a rebuild changes while it replays whole models is put back afterwards, even after a failure:
the SQLite writer's settings, and the garbage collector's frozen objects (only its own freeze)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from adapters.eventstore.readmodel_sqlite import BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES, SqliteReadModelStore
from projections.bulk import replaying_whole_models


def settings_of(store: SqliteReadModelStore) -> tuple[int, int]:
    conn = store._writer  # noqa: SLF001 - the writer's own settings are what is under test
    return conn.execute("PRAGMA cache_size").fetchone()[0], conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def test_bulk_writes_tune_the_writer_meanwhile_and_restore_it_after(tmp_path: Path) -> None:
    store = SqliteReadModelStore(tmp_path / "readmodels.sqlite3")
    try:
        before = settings_of(store)
        with store.bulk_writes():
            assert settings_of(store) == (-BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES)
        assert settings_of(store) == before
        with pytest.raises(RuntimeError), store.bulk_writes():
            raise RuntimeError("a failed rebuild")
        assert settings_of(store) == before
    finally:
        store.close()


def test_objects_alive_before_each_batch_are_frozen_and_unfrozen_at_the_end() -> None:
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), replaying_whole_models(MemoryReadModelStore()) as before_batch:
        before_batch()
        assert gc.get_freeze_count() > 0  # a collection skips what the batches before left alive
        raise RuntimeError("a failed rebuild")
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_someone_elses_freeze_is_left_alone() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with replaying_whole_models(MemoryReadModelStore()) as before_batch:
            before_batch()
        # Neither unfrozen (0) nor frozen more; frozen objects that die meanwhile (other
        # threads of the suite drop theirs) leave the count, so it may fall a little.
        assert 0.9 * frozen <= gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
