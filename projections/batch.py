"""A batch's documents in memory: each changed document is encoded and written once per batch.

A projection's ``handle`` is a read-modify-write of a few documents per event. Done
against the database transaction, every event costs a JSON decode and encode of each
document it touches, so a hot document (a worker's row, a fleet total) is encoded once
per event. ``DocumentBatch`` sits between the projection and the transaction for one
batch: ``get`` hands out the live document (loaded at most once per batch), ``put`` marks
it changed, and ``flush`` writes each changed document once, before the checkpoint, in
the same transaction (exactly-once is the runner's transaction, unchanged): table by
table, through the transaction's ``put_many`` where it has one (the SQL stores: one
``executemany`` of ready rows, no per-document round through ``put``).

Contract for projections (all of ``projections/readmodels`` keep it): a document from
``get`` is live for the batch — change it only when you ``put`` it afterwards.
"""

from __future__ import annotations

import itertools
from typing import Any

from projections.readmodel import Checkpoint, Document, ReadModelTx, Where

_DELETED: Any = object()


class DocumentBatch:
    """``ReadModelTx`` that keeps one batch's documents as live objects over ``inner``.

    ``rename`` maps a projection's table names to the physical ones it writes (a shadow
    rebuild writes ``<table>__shadow`` while the projection's code says ``<table>``).
    """

    def __init__(self, inner: ReadModelTx, rename: dict[str, str] | None = None,
                 carried: dict[tuple[str, str], Any] | None = None) -> None:
        self.inner = inner
        self._rename = rename or {}
        # (table, key) -> live doc | None | _DELETED; ``carried``: what the previous batch of
        # the same writer left (a rebuild's hot documents stay in memory across batches).
        # The carried mapping itself is used (and updated): the documents in it are live
        # objects anyway, and a failed batch drops the carry altogether.
        self._docs: dict[tuple[str, str], Any] = carried if carried is not None else {}
        self._dirty: dict[tuple[str, str], None] = {}  # insertion-ordered set
        self._read: dict[tuple[str, str], None] = {}  # slots the projection read: worth carrying
        self._written: dict[tuple[str, str], None] = {}

    # get / put are called several times per event: kept to a few dict operations.
    def get(self, table: str, key: str) -> Document | None:
        slot = (self._rename.get(table, table), key)
        found = self._docs.get(slot, _DELETED)
        if found is _DELETED and slot not in self._docs:
            found = self._docs[slot] = self.inner.get(slot[0], key)
        self._read[slot] = None
        return None if found is _DELETED else found

    def put(self, table: str, key: str, doc: Document) -> None:
        slot = (self._rename.get(table, table), key)
        self._docs[slot] = doc
        self._dirty[slot] = None
        self._written[slot] = None

    def delete(self, table: str, key: str) -> None:
        slot = (self._rename.get(table, table), key)
        self._docs[slot] = _DELETED
        self._dirty[slot] = None
        self._written[slot] = None

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]:
        # A query must see the batch's own writes: write them first (rare in projections).
        self.flush()
        return self.inner.query(self._rename.get(table, table), where, order_by, descending, limit)

    def flush(self) -> None:
        """Write every changed document once into ``inner`` (deletes first, then the puts of
        each table in first-change order: each key is either, so the order cannot matter)."""
        docs = self._docs
        by_table: dict[str, list[tuple[str, Document]]] = {}
        for slot in self._dirty:
            doc = docs[slot]
            if doc is _DELETED:
                self.inner.delete(*slot)
            else:
                table, key = slot
                rows = by_table.get(table)
                if rows is None:
                    rows = by_table[table] = []
                rows.append((key, doc))
        self._dirty.clear()
        put_many = getattr(self.inner, "put_many", None)
        for table, rows in by_table.items():
            if put_many is not None:
                put_many(table, rows)
            else:
                for key, doc in rows:
                    self.inner.put(table, key, doc)
        # Written documents stay live: later events of the batch keep changing them.

    def carry(self, limit: int) -> dict[tuple[str, str], Any]:
        """The documents worth keeping for the next batch: those read recently, at most
        ``limit`` (least recently read dropped). Written-only documents (a timeline's rows)
        are not kept: nothing reads them again."""
        docs = self._docs
        for slot in self._written:
            if slot not in self._read:
                docs.pop(slot, None)
        for slot in self._read:  # most recently read last
            docs[slot] = docs.pop(slot)
        excess = len(docs) - limit
        if excess > 0:
            for slot in list(itertools.islice(docs, excess)):
                del docs[slot]
        return docs

    @property
    def changed(self) -> int:
        return len(self._dirty)

    # -- checkpoints go straight to the transaction ----------------------------------
    def checkpoint(self, name: str) -> Checkpoint | None:
        return self.inner.checkpoint(name)

    def save_checkpoint(self, name: str, position: int, version: int = 0) -> None:
        self.inner.save_checkpoint(name, position, version)

    def delete_checkpoint(self, name: str) -> None:
        self.inner.delete_checkpoint(name)
