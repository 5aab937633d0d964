"""Schema changes on a shared PostgreSQL database, one process at a time.

Replicas that start together all run ``CREATE ... IF NOT EXISTS``; PostgreSQL does not make
those safe against each other (they fail with "tuple concurrently updated" or a duplicate key
in its catalogue), so every LRM process takes this advisory lock around its DDL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from adapters.eventstore.settings import postgres_conninfo

# One key for all LRM schema changes: DDL is rare and quick, so one queue is enough.
DDL_LOCK_KEY = 0x4C524D5F44444C  # "LRM_DDL"
DDL_XACT_LOCK_SQL = f"SELECT pg_advisory_xact_lock({DDL_LOCK_KEY})"


@contextmanager
def serialized_ddl(postgres_url: str) -> Iterator[psycopg.Connection]:
    """Hold the DDL lock on a connection of its own for the duration of the block."""
    with psycopg.connect(postgres_conninfo(postgres_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))
