"""SQL implementation of the read-model port, shared by SQLite and PostgreSQL.

Each logical table ``t`` is a physical table ``rm_t(key PRIMARY KEY, doc, ix_<field>...)``:
the document as JSON plus one typed, indexed column per declared field, so filters and
keyset pagination run on real indexes. Checkpoints live in ``rm__checkpoints``.
The two dialects differ only in placeholders, column types and how JSON is read back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from adapters.eventstore.readmodel_common import ReadModelStoreBase, page_of
from processors.ports.readmodels import (
    Checkpoint,
    Document,
    Page,
    ReadModelTx,
    Table,
    Where,
    check_fields,
    decode_cursor,
    dumps,
    dumps_many,
    index_values_of,
    iter_where,
    loads,
)

Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
ExecuteMany = Callable[[str, Sequence[Sequence[Any]]], None]
_MISSING: Any = object()


@dataclass(frozen=True)
class Dialect:
    placeholder: str
    doc_type: str
    doc_param: str  # how a JSON text parameter is written into the doc column
    types: dict[type, str]
    prefix: str  # "" or '"schema".'
    load: Callable[[Any], Document]
    lock_row: str = ""  # " FOR UPDATE" on PostgreSQL; SQLite's BEGIN IMMEDIATE locks all
    ddl_lock: str = ""  # PostgreSQL: serialise CREATE/DROP with other processes (eventstore/ddl.py)
    # PostgreSQL renames indexes (and the primary key's) with ALTER INDEX; SQLite cannot, so
    # a promoted shadow's indexes are re-created under the live names.
    rename_indexes: bool = False
    # Lists a table's columns: (sql, params) for a physical table name without the prefix.
    columns: Callable[[str], tuple[str, list[Any]]] = lambda name: ("SELECT name FROM pragma_table_info(?)", [name])

    def table(self, name: str) -> str:
        return f"{self.prefix}rm_{name}"

    @property
    def checkpoints(self) -> str:
        return f"{self.prefix}rm__checkpoints"


_DELETED: Any = object()


class SqlTx:
    """``ReadModelTx`` over one open database transaction.

    Writes are buffered and flushed with one ``executemany`` per table before commit (and
    before any query in the transaction), and documents read or written are cached: a
    batch that updates the same document many times (rebuilds do) costs one round trip
    per table instead of two per event.
    """

    def __init__(self, store: SqlReadModelStore, execute: Execute, execute_many: ExecuteMany) -> None:
        self._store = store
        self._execute = execute
        self._execute_many = execute_many
        # (table, key) -> JSON text | None (absent) | _DELETED
        self._cache: dict[tuple[str, str], Any] = {}
        # (table, key) -> row to upsert [key, JSON text, index values...] | _DELETED
        self._dirty: dict[tuple[str, str], Any] = {}

    def get(self, table: str, key: str) -> Document | None:
        cached = self._cache.get((table, key), _MISSING)
        if cached is _MISSING:
            found = self._store._get(self._execute, table, key)  # noqa: SLF001
            self._cache[(table, key)] = None if found is None else dumps(found)
            return found  # fresh from the database: the caller's own copy
        if cached is None or cached is _DELETED:
            return None
        return loads(cached)  # a fresh copy: callers may mutate what they get

    def put(self, table: str, key: str, doc: Document) -> None:
        values = self._store.index_values(table)
        text = dumps(doc)  # snapshot now, as a database would
        self._cache[(table, key)] = text
        self._dirty[(table, key)] = [key, text, *values(doc)]

    def put_many(self, table: str, items: Sequence[tuple[str, Document]]) -> None:
        """``put`` of each ``(key, doc)`` (distinct keys), written now in one ``executemany``:
        a batch of projected documents (projections/batch.py) that keeps its own copies."""
        if not items:
            return
        cache, dirty = self._cache, self._dirty
        if cache or dirty:
            for key, _doc in items:
                cache.pop((table, key), None)
                dirty.pop((table, key), None)  # this write supersedes a staged one
        values = self._store.index_values(table)
        texts = dumps_many([doc for _key, doc in items])
        rows = [[key, text, *values(doc)] for (key, doc), text in zip(items, texts, strict=True)]
        self._execute_many(self._store.upsert_sql(table), rows)

    def delete(self, table: str, key: str) -> None:
        self._store.table(table)
        self._cache[(table, key)] = _DELETED
        self._dirty[(table, key)] = _DELETED

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        self.flush()
        rows = self._store._select(  # noqa: SLF001
            self._execute, table, where, order_by, descending, limit, None
        )
        return [doc for doc, _sort, _key in rows]

    def flush(self) -> None:
        if not self._dirty:
            return
        d = self._store.dialect
        puts: dict[str, list[list[Any]]] = {}
        deletes: dict[str, list[list[Any]]] = {}
        for (table, key), staged in self._dirty.items():
            if staged is _DELETED:
                deletes.setdefault(table, []).append([key])
            else:
                puts.setdefault(table, []).append(staged)
        self._dirty.clear()
        for table, rows in deletes.items():
            self._execute_many(f"DELETE FROM {d.table(table)} WHERE key = {d.placeholder}", rows)
        for table, rows in puts.items():
            self._execute_many(self._store.upsert_sql(table), rows)

    def checkpoint(self, name: str) -> Checkpoint | None:
        d = self._store.dialect
        rows = self._execute(
            f"SELECT position, version FROM {d.checkpoints} WHERE name = {d.placeholder}"
            f"{d.lock_row}",
            [name],
        )
        return Checkpoint(name, int(rows[0][0]), int(rows[0][1])) if rows else None

    def save_checkpoint(self, name: str, position: int, version: int = 0) -> None:
        d = self._store.dialect
        p = d.placeholder
        self._execute(
            f"INSERT INTO {d.checkpoints} (name, position, version) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "version = excluded.version",
            [name, position, version],
        )

    def delete_checkpoint(self, name: str) -> None:
        d = self._store.dialect
        self._execute(f"DELETE FROM {d.checkpoints} WHERE name = {d.placeholder}", [name])


class SqlReadModelStore(ReadModelStoreBase, ABC):
    dialect: Dialect

    def __init__(self) -> None:
        super().__init__()
        # Per table name, made once for the declared ``Table`` (re-made when it is re-declared).
        self._upserts: dict[str, tuple[Table, str]] = {}
        self._index_values: dict[str, tuple[Table, Callable[[Document], list[Any]]]] = {}

    # -- connections (per backend) ----------------------------------------------------
    @abstractmethod
    def _write(self) -> AbstractContextManager[tuple[Execute, ExecuteMany]]:
        """A write transaction: commit on clean exit, roll back on error."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Execute]:
        """A read-only connection (sees committed data)."""

    @abstractmethod
    def close(self) -> None: ...

    # -- writing rows (SqlTx) -------------------------------------------------------------
    def upsert_sql(self, table: str) -> str:
        """``INSERT ... ON CONFLICT (key) DO UPDATE`` of one row ``[key, doc, ix_...]``."""
        spec = self.table(table)
        cached = self._upserts.get(table)
        if cached is not None and cached[0] is spec:
            return cached[1]
        d = self.dialect
        cols = ["key", "doc", *(f"ix_{n}" for n in spec.indexes)]
        marks = [d.placeholder, d.doc_param, *(d.placeholder for _ in spec.indexes)]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
        sql = (f"INSERT INTO {d.table(table)} ({', '.join(cols)}) "
               f"VALUES ({', '.join(marks)}) ON CONFLICT (key) DO UPDATE SET {updates}")
        self._upserts[table] = (spec, sql)
        return sql

    def index_values(self, table: str) -> Callable[[Document], list[Any]]:
        spec = self.table(table)
        cached = self._index_values.get(table)
        if cached is not None and cached[0] is spec:
            return cached[1]
        values = index_values_of(spec)
        self._index_values[table] = (spec, values)
        return values

    # -- schema ------------------------------------------------------------------------
    def _create_checkpoints_table(self) -> None:
        d = self.dialect
        with self._write() as (execute, _many):
            self._lock_ddl(execute)
            execute(
                f"CREATE TABLE IF NOT EXISTS {d.checkpoints} ("
                f"name {d.types[str]} PRIMARY KEY, position {d.types[int]} NOT NULL, "
                f"version {d.types[int]} NOT NULL)",
                [],
            )

    def _lock_ddl(self, execute: Execute) -> None:
        if self.dialect.ddl_lock:
            execute(self.dialect.ddl_lock, [])

    def ensure_tables(self, tables: Sequence[Table]) -> None:
        d = self.dialect
        with self._write() as (execute, _many):
            self._lock_ddl(execute)
            for spec in tables:
                cols = "".join(f", ix_{n} {d.types[t]}" for n, t in spec.indexes.items())
                execute(
                    f"CREATE TABLE IF NOT EXISTS {d.table(spec.name)} "
                    f"(key {d.types[str]} PRIMARY KEY, doc {d.doc_type} NOT NULL{cols})",
                    [],
                )
                self._add_missing_columns(execute, spec)
                for n in () if spec.defer_indexes else spec.indexes:
                    execute(
                        f"CREATE INDEX IF NOT EXISTS rm_{spec.name}_ix_{n} "
                        f"ON {d.table(spec.name)} (ix_{n}, key)",
                        [],
                    )
                self._tables[spec.name] = spec

    def _add_missing_columns(self, execute: Execute, spec: Table) -> None:
        """A model of an older version (still served while its new version rebuilds in a
        shadow) may lack a newly indexed field: add the column, empty, so that filtering on
        it finds nothing instead of failing until the switch-over."""
        d = self.dialect
        sql, params = d.columns(f"rm_{spec.name}")
        present = {row[0] for row in execute(sql, params)}
        for n, kind in spec.indexes.items():
            if f"ix_{n}" not in present:
                execute(f"ALTER TABLE {d.table(spec.name)} ADD COLUMN ix_{n} {d.types[kind]}", [])

    def drop_tables(self, tables: Sequence[Table]) -> None:
        with self._write() as (execute, _many):
            self._lock_ddl(execute)
            for spec in tables:
                execute(f"DROP TABLE IF EXISTS {self.dialect.table(spec.name)}", [])

    def promote(self, pairs: Sequence[tuple[Table, Table]], shadow_checkpoint: str, checkpoint: str) -> bool:
        """Replace each live table by its shadow and move the shadow's checkpoint, atomically.

        ``pairs`` are ``(shadow, live)``. One transaction (DDL is transactional on both
        backends): readers see the whole old model or the whole new one. False when the
        shadow checkpoint is gone (another runner promoted it first).
        """
        d = self.dialect
        p = d.placeholder
        with self._write() as (execute, _many):
            self._lock_ddl(execute)
            rows = execute(f"SELECT position, version FROM {d.checkpoints} WHERE name = {p}{d.lock_row}",
                           [shadow_checkpoint])
            if not rows:
                return False
            for shadow, live in pairs:
                if d.rename_indexes:  # PostgreSQL: built before the old table is locked by DROP
                    for n in live.indexes:
                        execute(f"CREATE INDEX IF NOT EXISTS rm_{shadow.name}_ix_{n} "
                                f"ON {d.table(shadow.name)} (ix_{n}, key)", [])
                execute(f"DROP TABLE IF EXISTS {d.table(live.name)}", [])
                execute(f"ALTER TABLE {d.table(shadow.name)} RENAME TO rm_{live.name}", [])
                if d.rename_indexes:
                    execute(f"ALTER INDEX IF EXISTS {d.prefix}rm_{shadow.name}_pkey RENAME TO rm_{live.name}_pkey", [])
                for n in live.indexes:
                    if d.rename_indexes:
                        execute(f"ALTER INDEX IF EXISTS {d.prefix}rm_{shadow.name}_ix_{n} "
                                f"RENAME TO rm_{live.name}_ix_{n}", [])
                    else:  # SQLite readers keep their snapshot meanwhile (WAL)
                        execute(f"DROP INDEX IF EXISTS {d.prefix}rm_{shadow.name}_ix_{n}", [])
                        execute(f"CREATE INDEX IF NOT EXISTS rm_{live.name}_ix_{n} "
                                f"ON {d.table(live.name)} (ix_{n}, key)", [])
            execute(f"DELETE FROM {d.checkpoints} WHERE name = {p}", [shadow_checkpoint])
            execute(
                f"INSERT INTO {d.checkpoints} (name, position, version) VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version",
                [checkpoint, int(rows[0][0]), int(rows[0][1])],
            )
        for shadow, live in pairs:
            self._tables.pop(shadow.name, None)
            self._tables[live.name] = live
        return True

    @contextmanager
    def _transaction(self) -> Iterator[ReadModelTx]:
        with self._write() as (execute, execute_many):
            tx = SqlTx(self, execute, execute_many)
            yield tx
            tx.flush()

    # -- queries -----------------------------------------------------------------------
    def get(self, table: str, key: str) -> Document | None:
        with self._read() as execute:
            return self._get(execute, table, key)

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 100,
        after: str | None = None,
    ) -> Page:
        with self._read() as execute:
            rows = self._select(execute, table, where, order_by, descending, limit + 1, after)
        return page_of(rows, limit)

    def count(self, table: str, where: Where | None = None) -> int:
        spec = self.table(table)
        check_fields(spec, where, None)
        clauses, params = self._where(where)
        sql = f"SELECT COUNT(*) FROM {self.dialect.table(table)}{_joined(clauses)}"
        with self._read() as execute:
            return int(execute(sql, params)[0][0])

    def checkpoint(self, name: str) -> Checkpoint | None:
        d = self.dialect
        with self._read() as execute:
            rows = execute(
                f"SELECT position, version FROM {d.checkpoints} WHERE name = {d.placeholder}",
                [name],
            )
        return Checkpoint(name, int(rows[0][0]), int(rows[0][1])) if rows else None

    def checkpoints(self) -> dict[str, Checkpoint]:
        with self._read() as execute:
            rows = execute(f"SELECT name, position, version FROM {self.dialect.checkpoints}", [])
        return {r[0]: Checkpoint(r[0], int(r[1]), int(r[2])) for r in rows}

    # -- SQL building --------------------------------------------------------------------
    def _get(self, execute: Execute, table: str, key: str) -> Document | None:
        d = self.dialect
        self.table(table)
        rows = execute(f"SELECT doc FROM {d.table(table)} WHERE key = {d.placeholder}", [key])
        return d.load(rows[0][0]) if rows else None

    def _where(self, where: Where | None) -> tuple[list[str], list[Any]]:
        p = self.dialect.placeholder
        clauses: list[str] = []
        params: list[Any] = []
        for name, value in iter_where(where):
            column = "key" if name == "key" else f"ix_{name}"
            if value is None:
                clauses.append(f"{column} IS NULL")
            elif isinstance(value, list):
                if not value:
                    clauses.append("1 = 0")
                else:
                    clauses.append(f"{column} IN ({', '.join(p for _ in value)})")
                    params.extend(value)
            else:
                clauses.append(f"{column} = {p}")
                params.append(value)
        return clauses, params

    def _select(
        self,
        execute: Execute,
        table: str,
        where: Where | None,
        order_by: str | None,
        descending: bool,
        limit: int | None,
        after: str | None,
    ) -> list[tuple[Document, Any, str]]:
        spec = self.table(table)
        check_fields(spec, where, order_by)
        p = self.dialect.placeholder
        clauses, params = self._where(where)
        sort = "key" if order_by in (None, "key") else f"ix_{order_by}"
        op = "<" if descending else ">"
        if after is not None:
            value, key = decode_cursor(after)
            if sort == "key":
                clauses.append(f"key {op} {p}")
                params.append(key)
            else:
                clauses.append(f"({sort} {op} {p} OR ({sort} = {p} AND key {op} {p}))")
                params.extend([value, value, key])
        direction = " DESC" if descending else ""
        sql = (
            f"SELECT doc, {sort}, key FROM {self.dialect.table(table)}{_joined(clauses)} "
            f"ORDER BY {sort}{direction}, key{direction}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        load = self.dialect.load
        return [(load(doc), s, k) for doc, s, k in execute(sql, params)]


def _joined(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
