"""Translate our configuration (a backend kind, a path, a URL) into library settings."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from eventsourcing.postgres import PostgresFactory

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_identifier(name: str, what: str = "identifier") -> str:
    """Schema, table and column names are interpolated into SQL: allow only plain ones."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} {name!r}: use lower-case letters, digits, '_'")
    return name


def postgres_env(url: str, schema: str | None = None) -> dict[str, str]:
    """``postgresql://user:pw@host:port/db`` → the library's ``POSTGRES_*`` settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    env = {
        PostgresFactory.POSTGRES_DBNAME: unquote(parts.path.lstrip("/")) or "postgres",
        PostgresFactory.POSTGRES_HOST: parts.hostname or "127.0.0.1",
        PostgresFactory.POSTGRES_PORT: str(parts.port or 5432),
        PostgresFactory.POSTGRES_USER: unquote(parts.username or "postgres"),
        PostgresFactory.POSTGRES_PASSWORD: unquote(parts.password or ""),
    }
    if schema:
        env[PostgresFactory.POSTGRES_SCHEMA] = check_identifier(schema, "schema")
    return env


def postgres_conninfo(url: str) -> str:
    """A psycopg connection string equivalent to ``url`` (for our own connections)."""
    env = postgres_env(url)
    pairs = {
        "dbname": env[PostgresFactory.POSTGRES_DBNAME],
        "host": env[PostgresFactory.POSTGRES_HOST],
        "port": env[PostgresFactory.POSTGRES_PORT],
        "user": env[PostgresFactory.POSTGRES_USER],
    }
    if env[PostgresFactory.POSTGRES_PASSWORD]:
        pairs["password"] = env[PostgresFactory.POSTGRES_PASSWORD]
    return " ".join(f"{k}='{_escape(v)}'" for k, v in pairs.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
