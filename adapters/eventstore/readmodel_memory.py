"""In-memory read models (tests, simulation): same semantics as the SQL stores.

A transaction stages its writes in an overlay and applies them under the store's lock on
commit, so readers never see half a batch, and a failed batch leaves nothing behind.
Documents are copied in and out (JSON round trip), like a database would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    index_value,
    iter_where,
    loads,
)

_DELETED = object()


class MemoryTx:
    def __init__(self, store: MemoryReadModelStore) -> None:
        self._store = store
        self._writes: dict[tuple[str, str], Any] = {}  # (table, key) -> json text | _DELETED
        self._checkpoints: dict[str, Checkpoint | None] = {}

    def get(self, table: str, key: str) -> Document | None:
        self._store.table(table)
        staged = self._writes.get((table, key))
        if staged is _DELETED:
            return None
        if staged is not None:
            return loads(staged)
        return self._store.get(table, key)

    def put(self, table: str, key: str, doc: Document) -> None:
        self._store.table(table)
        self._writes[(table, key)] = dumps(doc)

    def delete(self, table: str, key: str) -> None:
        self._store.table(table)
        self._writes[(table, key)] = _DELETED

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        rows = dict(self._store._rows(table))  # noqa: SLF001
        for (t, key), staged in self._writes.items():
            if t != table:
                continue
            if staged is _DELETED:
                rows.pop(key, None)
            else:
                rows[key] = staged
        selected = self._store._select(table, rows, where, order_by, descending, None)  # noqa: SLF001
        if limit is not None:
            selected = selected[:limit]
        return [doc for doc, _s, _k in selected]

    def checkpoint(self, name: str) -> Checkpoint | None:
        if name in self._checkpoints:
            return self._checkpoints[name]
        return self._store.checkpoint(name)

    def save_checkpoint(self, name: str, position: int, version: int = 0) -> None:
        self._checkpoints[name] = Checkpoint(name, position, version)

    def delete_checkpoint(self, name: str) -> None:
        self._checkpoints[name] = None

    def commit(self) -> None:
        self._store._apply(self._writes, self._checkpoints)  # noqa: SLF001


class MemoryReadModelStore(ReadModelStoreBase):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._data: dict[str, dict[str, str]] = {}
        self._checkpoints: dict[str, Checkpoint] = {}

    def ensure_tables(self, tables: Sequence[Table]) -> None:
        with self._lock:
            for spec in tables:
                self._tables[spec.name] = spec
                self._data.setdefault(spec.name, {})

    def drop_tables(self, tables: Sequence[Table]) -> None:
        with self._lock:
            for spec in tables:
                self._data.pop(spec.name, None)

    def promote(self, pairs: Sequence[tuple[Table, Table]], shadow_checkpoint: str, checkpoint: str) -> bool:
        """Replace each live table by its shadow and move the checkpoint (one step under the lock)."""
        with self._lock:
            shadow_cp = self._checkpoints.pop(shadow_checkpoint, None)
            if shadow_cp is None:
                return False
            for shadow, live in pairs:
                self._data[live.name] = self._data.pop(shadow.name, {})
                self._tables.pop(shadow.name, None)
                self._tables[live.name] = live
            self._checkpoints[checkpoint] = Checkpoint(checkpoint, shadow_cp.position, shadow_cp.version)
            return True

    @contextmanager
    def _transaction(self) -> Iterator[ReadModelTx]:
        # Writers are serialised, like a database's write lock.
        with self._lock:
            tx = MemoryTx(self)
            yield tx
            tx.commit()

    def get(self, table: str, key: str) -> Document | None:
        self.table(table)
        with self._lock:
            raw = self._data.get(table, {}).get(key)
        return loads(raw) if raw is not None else None

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 100,
        after: str | None = None,
    ) -> Page:
        return page_of(self._select(table, self._rows(table), where, order_by, descending, after), limit)

    def count(self, table: str, where: Where | None = None) -> int:
        return len(self._select(table, self._rows(table), where, None, False, None))

    def checkpoint(self, name: str) -> Checkpoint | None:
        with self._lock:
            return self._checkpoints.get(name)

    def checkpoints(self) -> dict[str, Checkpoint]:
        with self._lock:
            return dict(self._checkpoints)

    def close(self) -> None:
        pass

    # -- internals --------------------------------------------------------------------
    def _rows(self, table: str) -> dict[str, str]:
        self.table(table)
        with self._lock:
            return dict(self._data.get(table, {}))

    def _apply(
        self, writes: dict[tuple[str, str], Any], checkpoints: dict[str, Checkpoint | None]
    ) -> None:
        with self._lock:
            for (table, key), staged in writes.items():
                rows = self._data.setdefault(table, {})
                if staged is _DELETED:
                    rows.pop(key, None)
                else:
                    rows[key] = staged
            for name, cp in checkpoints.items():
                if cp is None:
                    self._checkpoints.pop(name, None)
                else:
                    self._checkpoints[name] = cp

    def _select(
        self,
        table: str,
        rows: dict[str, str],
        where: Where | None,
        order_by: str | None,
        descending: bool,
        after: str | None,
    ) -> list[tuple[Document, Any, str]]:
        spec = self.table(table)
        check_fields(spec, where, order_by)
        conditions = list(iter_where(where))
        by_key = order_by in (None, "key")
        result: list[tuple[Document, Any, str]] = []
        for key, raw in rows.items():
            doc = loads(raw)
            if all(_matches(spec, doc, key, name, value) for name, value in conditions):
                sort = key if by_key else index_value(spec, order_by, doc)  # type: ignore[arg-type]
                result.append((doc, sort, key))
        result.sort(key=lambda r: (_null_first(r[1]), r[2]), reverse=descending)
        if after is not None:
            value, key = decode_cursor(after)
            pivot = (_null_first(key if by_key else value), key)
            result = [
                r for r in result
                if ((_null_first(r[1]), r[2]) < pivot if descending
                    else (_null_first(r[1]), r[2]) > pivot)
            ]
        return result


def _matches(spec: Table, doc: Document, key: str, name: str, value: Any) -> bool:
    actual = key if name == "key" else index_value(spec, name, doc)
    if isinstance(value, list):
        return actual in value
    return actual == value


def _null_first(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)
