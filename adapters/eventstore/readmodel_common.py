"""What every read-model store does the same way, whatever keeps its documents.

The memory and SQL stores differ in where rows live and how they are selected; the table
registry, the checkpoint shortcuts and how a page (with its next cursor) is cut from the
selected rows are one rule, kept here so the two cannot drift apart.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from processors.ports.readmodels import Checkpoint, Document, Page, ReadModelTx, Table, encode_cursor

# A selected row: the document, its sort value and its key (the cursor's two parts).
Row = tuple[Document, Any, str]


def page_of(rows: Sequence[Row], limit: int) -> Page:
    """The first ``limit`` rows, with a cursor only when ``rows`` holds more than that.

    Callers select at least ``limit + 1`` rows (when there are that many) so that "more"
    is known without a second query.
    """
    page = rows[:limit]
    more = len(rows) > limit
    cursor = encode_cursor(page[-1][1], page[-1][2]) if more and page else None
    return Page([doc for doc, _sort, _key in page], cursor)


class ReadModelStoreBase:
    """Declared tables and the checkpoint shortcuts, over a store's own transaction."""

    def __init__(self) -> None:
        self._tables: dict[str, Table] = {}

    def table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"read-model table {name!r} is not declared (ensure_tables)") from None

    def transaction(self) -> AbstractContextManager[ReadModelTx]:
        return self._transaction()

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[ReadModelTx]:
        """One atomic batch of writes: all of it is seen on clean exit, none on error."""

    @abstractmethod
    def checkpoint(self, name: str) -> Checkpoint | None: ...

    def load_checkpoint(self, name: str) -> int:
        found = self.checkpoint(name)
        return found.position if found else 0

    def save_checkpoint(self, name: str, position: int) -> None:
        with self.transaction() as tx:
            tx.save_checkpoint(name, position)
