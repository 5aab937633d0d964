"""Read models in the event store's PostgreSQL database (``rm_*`` tables, same schema)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg_pool import ConnectionPool

from adapters.eventstore.ddl import DDL_XACT_LOCK_SQL
from adapters.eventstore.factory import create_schema
from adapters.eventstore.readmodel_sql import (
    Dialect,
    Execute,
    ExecuteMany,
    SqlReadModelStore,
)
from adapters.eventstore.settings import check_identifier, postgres_conninfo


def _load(value: Any) -> Any:
    return value  # psycopg already decodes jsonb


class PostgresReadModelStore(SqlReadModelStore):
    def __init__(self, url: str, schema: str | None = None, *, pool_size: int = 8) -> None:
        super().__init__()
        schema = check_identifier(schema or "public", "schema")
        if schema != "public":
            create_schema(url, schema)
        self.dialect = Dialect(
            placeholder="%s",
            doc_type="JSONB",
            doc_param="%s::jsonb",
            types={str: "TEXT", int: "BIGINT", float: "DOUBLE PRECISION", bool: "BOOLEAN"},
            prefix=f'"{schema}".',
            load=_load,
            lock_row=" FOR UPDATE",
            ddl_lock=DDL_XACT_LOCK_SQL,
            rename_indexes=True,
            columns=lambda name: ("SELECT column_name FROM information_schema.columns "
                                  "WHERE table_schema = %s AND table_name = %s", [schema, name]),
        )
        self._pool = ConnectionPool(
            postgres_conninfo(url),
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=True,
        )
        self._create_checkpoints_table()

    @contextmanager
    def _write(self) -> Iterator[tuple[Execute, ExecuteMany]]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _executor(cur), _many(cur)

    @contextmanager
    def _read(self) -> Iterator[Execute]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield _executor(cur)

    def close(self) -> None:
        self._pool.close()


def _many(cur: Any) -> ExecuteMany:
    def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur.executemany(sql, rows)

    return execute_many


def _executor(cur: Any) -> Execute:
    def execute(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cur.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []

    return execute
