"""Read models in their own SQLite file (``readmodels.sqlite3``), next to the event store.

One writer connection serialised by a lock (projections write in batches); one reader
connection per thread, which WAL lets read while the writer writes. ``synchronous=NORMAL``:
read models are rebuildable and each transaction still carries its checkpoint, so a power
loss can only lose a suffix of (models + checkpoint) together — they are replayed.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.eventstore.readmodel_sql import (
    Dialect,
    Execute,
    ExecuteMany,
    SqlReadModelStore,
)
from processors.ports.readmodels import Checkpoint, Table, loads

# ``bulk_writes``: the writer's page cache (KiB) and WAL checkpoint interval (pages) meanwhile.
BULK_CACHE_KIB = 65_536
BULK_CHECKPOINT_PAGES = 50_000

_SCRATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,60}$")

SQLITE_DIALECT = Dialect(
    placeholder="?",
    doc_type="TEXT",
    doc_param="?",
    types={str: "TEXT", int: "INTEGER", float: "REAL", bool: "INTEGER"},
    prefix="",
    load=loads,
)


class SqliteReadModelStore(SqlReadModelStore):
    dialect = SQLITE_DIALECT

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._create_checkpoints_table()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _write(self) -> Iterator[tuple[Execute, ExecuteMany]]:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _executor(conn), _many(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """While a rebuild writes a whole model: a bigger page cache for the writer (the
        tables' B-trees outgrow the default 2 MB at once) and a WAL checkpoint every
        ``BULK_CHECKPOINT_PAGES`` instead of every 1 000 pages (each checkpoint copies the
        pages changed since the last one, which a rebuild changes again and again, and
        syncs twice). Durability is unchanged: ``synchronous=NORMAL``, each commit with
        its checkpoint. The writer's settings are put back, and the WAL checkpointed, after."""
        with self._write_lock:
            conn = self._writer
            cache = conn.execute("PRAGMA cache_size").fetchone()[0]
            pages = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            with self._write_lock:
                conn.execute(f"PRAGMA cache_size={int(cache)}")
                conn.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def _read(self) -> Iterator[Execute]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        yield _executor(conn)

    # -- scratch builds (projections/parallel.py) -------------------------------------------
    # SQLite has one writer per file: rebuild processes writing here would take turns on the
    # lock (a batch's Python runs inside its transaction). Each builds in a scratch file of
    # its own instead, and the finished tables are copied in by SQLite itself.
    def scratch_path(self, name: str) -> Path:
        if not _SCRATCH_NAME.match(name):
            raise ValueError(f"invalid scratch name {name!r}")
        return Path(f"{self.path}.{name}.scratch")

    def open_scratch(self, name: str) -> SqliteReadModelStore:
        """An empty read-model store in a file of its own beside this one (a leftover of a
        crashed rebuild is discarded). Not durable: it is rebuilt, never recovered."""
        self.remove_scratch(name)
        scratch = SqliteReadModelStore(self.scratch_path(name))
        with scratch._write_lock:  # noqa: SLF001 - the same class
            scratch._writer.execute("PRAGMA synchronous=OFF")  # noqa: SLF001
        return scratch

    def adopt_scratch(self, name: str, tables: Sequence[Table], merged: Sequence[Table],
                      checkpoints: Sequence[Checkpoint]) -> None:
        """In one transaction: replace ``tables`` here by their copies in scratch ``name``,
        add (or replace by key) its rows of ``merged``, and save ``checkpoints``."""
        path = str(self.scratch_path(name))
        with self._write_lock:
            conn = self._writer
            conn.execute("ATTACH DATABASE ? AS scratch", (path,))  # not allowed inside a transaction
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for spec in tables:
                        table = self.dialect.table(spec.name)
                        ddl = conn.execute("SELECT sql FROM scratch.sqlite_master WHERE type = 'table' AND name = ?",
                                           (table,)).fetchone()
                        if ddl is None:
                            raise LookupError(f"scratch {name} has no table {table}")
                        conn.execute(f"DROP TABLE IF EXISTS main.{table}")
                        conn.execute(ddl[0])  # unqualified: created in main, as the scratch declared it
                        conn.execute(f"INSERT INTO main.{table} SELECT * FROM scratch.{table}")
                    for spec in merged:
                        table = self.dialect.table(spec.name)
                        columns = ", ".join(row[1] for row in conn.execute(f"PRAGMA scratch.table_info({table})"))
                        if columns:
                            conn.execute(f"INSERT OR REPLACE INTO main.{table} ({columns}) "
                                         f"SELECT {columns} FROM scratch.{table}")
                    conn.executemany(
                        f"INSERT INTO {self.dialect.checkpoints} (name, position, version) VALUES (?, ?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version",
                        [(c.name, c.position, c.version) for c in checkpoints])
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.execute("DETACH DATABASE scratch")
        for spec in tables:
            self._tables[spec.name] = spec

    def remove_scratch(self, name: str) -> None:
        path = self.scratch_path(name)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()


def _many(conn: sqlite3.Connection) -> ExecuteMany:
    def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    return execute_many


def _executor(conn: sqlite3.Connection) -> Execute:
    def execute(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params).fetchall()

    return execute
