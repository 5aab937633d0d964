"""The one place that builds the event store for the configured backend."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from adapters.eventstore.application import LrmApplication
from adapters.eventstore.ddl import serialized_ddl
from adapters.eventstore.person_keys import MemoryPersonKeys, PostgresPersonKeys, SqlitePersonKeys
from adapters.eventstore.settings import check_identifier, postgres_conninfo, postgres_env
from adapters.eventstore.store import BackendKind, EventStore
from adapters.eventstore.subscription import DEFAULT_POLL_INTERVAL

# str stream ids ("Worker-<uuid>") need text columns; the library defaults to uuid.
_COMMON = {"ORIGINATOR_ID_TYPE": "text"}


def open_event_store(
    kind: BackendKind,
    *,
    sqlite_path: str | Path | None = None,
    postgres_url: str | None = None,
    schema: str | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    esdb_uri: str | None = None,
    person_keys_url: str | None = None,
) -> EventStore:
    """Open (creating tables if needed) the event store.

    - ``memory``: in-process, for tests and simulation;
    - ``sqlite``: one file (WAL, synchronous=FULL: the library's defaults);
    - ``postgres``: ``postgresql://user:pw@host:port/db``; ``schema`` isolates
      deployments and tests (created if missing);
    - ``esdb``: EventStoreDB at ``esdb_uri`` (``esdb://host:2113?Tls=false``, or
      ``fake://<name>`` for the in-process fake); ``schema`` becomes a stream/type
      namespace (docs/event-store-esdb.md).

    Per-person keys (personal data in events, docs/operations/security.md) live beside the
    events: in the SQLite file, in the PostgreSQL schema; for EventStoreDB, which cannot
    truly delete, in the PostgreSQL database at ``person_keys_url`` (the read-model one).
    """
    if kind == "memory":
        env = {**_COMMON, "PERSISTENCE_MODULE": "eventsourcing.popo"}
        keys: MemoryPersonKeys | SqlitePersonKeys | PostgresPersonKeys = MemoryPersonKeys()
    elif kind == "sqlite":
        if not sqlite_path:
            raise ValueError("sqlite_path is required for the sqlite event store")
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        env = {**_COMMON, "PERSISTENCE_MODULE": "eventsourcing.sqlite",
               "SQLITE_DBNAME": str(sqlite_path)}
        keys = SqlitePersonKeys(sqlite_path)
    elif kind == "postgres":
        if not postgres_url:
            raise ValueError("postgres_url is required for the postgres event store")
        if schema:
            create_schema(postgres_url, schema)
        env = {**_COMMON, "PERSISTENCE_MODULE": "eventsourcing.postgres",
               **postgres_env(postgres_url, schema)}
        with serialized_ddl(postgres_url):  # the application creates its tables
            pg_keys = PostgresPersonKeys(postgres_url, schema)
            application = LrmApplication(env=env, person_keys=pg_keys)
        return EventStore(application, kind, poll_interval=poll_interval, on_close=pg_keys.close)
    elif kind == "esdb":
        if not esdb_uri:
            raise ValueError("esdb_uri is required for the esdb event store")
        from adapters.eventstore.esdb import esdb_env  # grpc is loaded only when used

        env = esdb_env(esdb_uri, namespace=schema or "")
        keys = PostgresPersonKeys(person_keys_url) if person_keys_url else MemoryPersonKeys()
    else:
        raise ValueError(f"unknown event store kind {kind!r}")
    return EventStore(LrmApplication(env=env, person_keys=keys), kind,
                      poll_interval=poll_interval, on_close=keys.close)


def create_schema(postgres_url: str, schema: str) -> None:
    check_identifier(schema, "schema")
    with serialized_ddl(postgres_url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def drop_schema(postgres_url: str, schema: str) -> None:
    """Drop a schema and everything in it (tests and benchmarks clean up with this)."""
    check_identifier(schema, "schema")
    with psycopg.connect(postgres_conninfo(postgres_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
