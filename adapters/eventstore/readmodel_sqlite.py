"""Read models in their own SQLite file (``readmodels.sqlite3``), next to the event store.

One writer connection serialised by a lock (projections write in batches); one reader
connection per thread, which WAL lets read while the writer writes. ``synchronous=NORMAL``:
read models are rebuildable and each transaction still carries its checkpoint, so a power
loss can only lose a suffix of (models + checkpoint) together — they are replayed.
"""

from __future__ import annotations

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
from processors.ports.readmodels import loads

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
    def _read(self) -> Iterator[Execute]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        yield _executor(conn)

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
