"""Open the read-model store that goes with the configured event store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from adapters.eventstore.readmodel_postgres import PostgresReadModelStore
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from processors.ports.readmodels import ReadModelStore


def open_read_model_store(
    kind: Literal["memory", "sqlite", "postgres"],
    *,
    sqlite_path: str | Path | None = None,
    postgres_url: str | None = None,
    schema: str | None = None,
) -> ReadModelStore:
    """``sqlite``: its own file (e.g. ``var/readmodels.sqlite3``, next to the event store's);
    ``postgres``: the event store's database and schema (tables ``rm_*``)."""
    if kind == "memory":
        return MemoryReadModelStore()
    if kind == "sqlite":
        if not sqlite_path:
            raise ValueError("sqlite_path is required for SQLite read models")
        return SqliteReadModelStore(sqlite_path)
    if kind == "postgres":
        if not postgres_url:
            raise ValueError("postgres_url is required for PostgreSQL read models")
        return PostgresReadModelStore(postgres_url, schema)
    raise ValueError(f"unknown read-model store kind {kind!r}")
