"""Port for read-model storage: named tables of JSON documents keyed by a string.

Each table declares a few indexed fields (with their type) that queries may filter and
sort on; everything else lives in the document. One implementation of each projection
then runs on SQLite, PostgreSQL and in memory (``adapters/eventstore/readmodel_*.py``).

Writes happen inside a ``ReadModelTx`` together with the checkpoint of the projection
that made them, so a projection's effects and its position commit atomically.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Document = dict[str, Any]
# A filter value: equality, or membership when a list/tuple/set is given; None = is null.
Where = Mapping[str, Any]
IndexType = type[str] | type[int] | type[float] | type[bool]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class Table:
    """A read-model table: ``name`` and its indexed fields (``field -> str|int|float|bool``).

    Changing a table's indexes requires bumping the owning projection's version
    (which rebuilds it).
    """

    name: str
    indexes: Mapping[str, IndexType] = field(default_factory=dict)
    # A shadow rebuild's table: its indexes are built once, at the switch-over (sorting
    # the finished table is far cheaper than keeping them up to date row by row).
    defer_indexes: bool = False

    def __post_init__(self) -> None:
        for name in (self.name, *self.indexes):
            if not _NAME.match(name):
                raise ValueError(f"invalid read-model name {name!r}")
        for name, kind in self.indexes.items():
            if kind not in (str, int, float, bool):
                raise ValueError(f"index {self.name}.{name}: unsupported type {kind!r}")


@dataclass(frozen=True)
class Checkpoint:
    """How far a projection (or processor) has applied the log, and with which code version."""

    name: str
    position: int
    version: int = 0


@dataclass(frozen=True)
class Page:
    items: list[Document]
    next_cursor: str | None


class UnknownField(ValueError):
    """A query filtered or sorted on a field that is not indexed."""


class ReadModelTx(Protocol):
    """Unit of work over read-model tables; commits on clean exit, rolls back on error."""

    def get(self, table: str, key: str) -> Document | None: ...

    def put(self, table: str, key: str, doc: Document) -> None: ...

    def delete(self, table: str, key: str) -> None: ...

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Document]: ...

    def checkpoint(self, name: str) -> Checkpoint | None:
        """The stored checkpoint, locked until the transaction ends (serialises runners)."""
        ...

    def save_checkpoint(self, name: str, position: int, version: int = 0) -> None: ...

    def delete_checkpoint(self, name: str) -> None: ...


class ReadModelStore(Protocol):
    """Read-model database (the adapters implement it for memory, SQLite, PostgreSQL)."""

    def ensure_tables(self, tables: Sequence[Table]) -> None: ...

    def drop_tables(self, tables: Sequence[Table]) -> None: ...

    def promote(self, pairs: Sequence[tuple[Table, Table]], shadow_checkpoint: str, checkpoint: str) -> bool:
        """Atomically replace each live table of ``pairs`` ``(shadow, live)`` by its shadow and
        rename checkpoint ``shadow_checkpoint`` to ``checkpoint`` (a shadow rebuild's switch-over).
        False when ``shadow_checkpoint`` does not exist (already promoted by another runner)."""
        ...

    def transaction(self) -> AbstractContextManager[ReadModelTx]: ...

    def get(self, table: str, key: str) -> Document | None: ...

    def query(
        self,
        table: str,
        where: Where | None = None,
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 100,
        after: str | None = None,
    ) -> Page: ...

    def count(self, table: str, where: Where | None = None) -> int: ...

    def checkpoint(self, name: str) -> Checkpoint | None: ...

    def checkpoints(self) -> dict[str, Checkpoint]: ...

    # Convenience for processors (processors.follower.CheckpointStore).
    def load_checkpoint(self, name: str) -> int: ...

    def save_checkpoint(self, name: str, position: int) -> None: ...

    def close(self) -> None: ...


# -- helpers shared by the implementations -------------------------------------------
def encode_cursor(value: Any, key: str) -> str:
    """Opaque keyset-pagination cursor: the sort value and key of the last item."""
    raw = json.dumps([value, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        value, key = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid cursor {cursor!r}") from error
    return value, str(key)


def json_default(obj: Any) -> Any:
    """Documents may hold datetimes, UUIDs, Decimals, enums, sets: store them as JSON."""
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "value") and not callable(obj.value):
        return obj.value
    return str(obj)


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(doc: Document) -> str:
    """Compact JSON text of ``doc`` (orjson: read models encode every document they write,
    so this is on the rebuild's hot path). What orjson refuses (lone surrogates, integers
    beyond 64 bits) goes through the
    standard library, which writes the same JSON for everything both accept."""
    try:
        return orjson.dumps(doc, default=json_default, option=_ORJSON_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(doc, default=json_default, separators=(",", ":"))


def dumps_many(docs: Sequence[Document]) -> list[str]:
    """``[dumps(doc) for doc in docs]`` without a Python call per document (a batch's rows)."""
    try:
        return [orjson.dumps(doc, default=json_default, option=_ORJSON_OPTIONS).decode() for doc in docs]
    except TypeError:  # orjson.JSONEncodeError included: one of them needs the standard library
        return [dumps(doc) for doc in docs]


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN / Infinity, which only the standard library writes


def index_value(table: Table, name: str, doc: Document) -> Any:
    """The value stored in the index column ``name`` for ``doc`` (JSON-normalised)."""
    value = doc.get(name)
    if value is None:
        return None
    kind = table.indexes[name]
    if kind is str:
        return value if isinstance(value, str) else json_default(value)
    if kind is bool:
        return bool(value)
    return kind(value)


def index_values_of(table: Table) -> Callable[[Document], list[Any]]:
    """``doc -> [index_value(table, name, doc) for name in table.indexes]``, made once per table:
    the rows of a batch's ``executemany`` are built with it (a string index that holds a
    string, the usual case, costs a ``get`` and a type test)."""
    columns = tuple(table.indexes.items())

    def values(doc: Document) -> list[Any]:
        row: list[Any] = []
        for name, kind in columns:
            value = doc.get(name)
            if value is None or value.__class__ is kind:
                row.append(value)
            elif kind is str:
                row.append(value if isinstance(value, str) else json_default(value))
            elif kind is bool:
                row.append(bool(value))
            else:
                row.append(kind(value))
        return row

    return values


def check_fields(table: Table, where: Where | None, order_by: str | None) -> None:
    for name in [*(where or {}), *([order_by] if order_by else [])]:
        if name != "key" and name not in table.indexes:
            raise UnknownField(f"{table.name}.{name} is not an indexed field")


def iter_where(where: Where | None) -> Iterator[tuple[str, Any]]:
    for name, value in (where or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            yield name, list(value)
        else:
            yield name, value
