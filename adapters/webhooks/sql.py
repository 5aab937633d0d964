"""DeliveryLog + SubscriptionCheckpoints in SQL: one set of statements for SQLite and
PostgreSQL (written with ``?`` placeholders, translated to ``%s`` for psycopg); only the
table definitions differ (autoincrement and binary column types).

Timestamps are stored as ISO 8601 text in UTC so both dialects read back the same thing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from processors.ports.webhooks import DeadLetter, DeliveryAttempt, EncodedMessage

Dialect = Literal["sqlite", "postgres"]

_DDL: dict[Dialect, Sequence[str]] = {
    "sqlite": (
        """CREATE TABLE IF NOT EXISTS webhook_checkpoints (
            subscription_id TEXT PRIMARY KEY, position BIGINT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS webhook_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, subscription_id TEXT NOT NULL, event_id TEXT NOT NULL,
            position BIGINT NOT NULL, subject TEXT NOT NULL, attempt INTEGER NOT NULL, at TEXT NOT NULL,
            status INTEGER, latency DOUBLE PRECISION NOT NULL, error TEXT, outcome TEXT NOT NULL,
            next_attempt_at TEXT)""",
        """CREATE TABLE IF NOT EXISTS webhook_dead_letters (
            subscription_id TEXT NOT NULL, event_id TEXT NOT NULL, position BIGINT NOT NULL,
            subject TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL,
            at TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, redelivering INTEGER NOT NULL,
            PRIMARY KEY (subscription_id, event_id))""",
    ),
    "postgres": (
        """CREATE TABLE IF NOT EXISTS webhook_checkpoints (
            subscription_id TEXT PRIMARY KEY, position BIGINT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS webhook_attempts (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription_id TEXT NOT NULL,
            event_id TEXT NOT NULL, position BIGINT NOT NULL, subject TEXT NOT NULL, attempt INTEGER NOT NULL,
            at TEXT NOT NULL, status INTEGER, latency DOUBLE PRECISION NOT NULL, error TEXT,
            outcome TEXT NOT NULL, next_attempt_at TEXT)""",
        """CREATE TABLE IF NOT EXISTS webhook_dead_letters (
            subscription_id TEXT NOT NULL, event_id TEXT NOT NULL, position BIGINT NOT NULL,
            subject TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL,
            at TEXT NOT NULL, headers TEXT NOT NULL, body BYTEA NOT NULL, redelivering INTEGER NOT NULL,
            PRIMARY KEY (subscription_id, event_id))""",
    ),
}
_COMMON_DDL = (
    "CREATE INDEX IF NOT EXISTS webhook_attempts_by_event ON webhook_attempts (subscription_id, event_id)",
)

_ATTEMPT_COLUMNS = (
    "subscription_id, event_id, position, subject, attempt, at, status, latency, error, outcome, next_attempt_at"
)
_DEAD_COLUMNS = "subscription_id, event_id, position, subject, type, reason, attempts, at, headers, body, redelivering"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class SqlWebhookStore:
    """Both ports on one DB-API connection (autocommit), serialised by a lock."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect
        self._lock = threading.Lock()
        with self._cursor() as cursor:
            for statement in (*_DDL[dialect], *_COMMON_DDL):
                cursor.execute(statement)

    @classmethod
    def sqlite(cls, path: str) -> SqlWebhookStore:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: no fsync per statement. A power cut may lose the last writes: the
        # checkpoint then lags and events are re-sent (at-least-once still holds).
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return cls(connection, "sqlite")

    @classmethod
    def postgres(cls, dsn: str) -> SqlWebhookStore:
        import psycopg

        return cls(psycopg.connect(dsn, autocommit=True), "postgres")

    def close(self) -> None:
        self._connection.close()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._lock:
            cursor = self._connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._dialect == "postgres" else statement

    def _execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cursor:
            cursor.execute(self._sql(statement), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    # -- SubscriptionCheckpoints ----------------------------------------------

    def get(self, subscription_id: str) -> int | None:
        rows = self._execute("SELECT position FROM webhook_checkpoints WHERE subscription_id = ?", (subscription_id,))
        return int(rows[0][0]) if rows else None

    def set(self, subscription_id: str, position: int) -> None:
        self._execute(
            "INSERT INTO webhook_checkpoints (subscription_id, position) VALUES (?, ?) "
            "ON CONFLICT (subscription_id) DO UPDATE SET position = excluded.position",
            (subscription_id, position),
        )

    def delete(self, subscription_id: str) -> None:
        self._execute("DELETE FROM webhook_checkpoints WHERE subscription_id = ?", (subscription_id,))

    # -- DeliveryLog ----------------------------------------------------------

    def record_attempt(self, attempt: DeliveryAttempt) -> None:
        self._execute(
            f"INSERT INTO webhook_attempts ({_ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attempt.subscription_id,
                attempt.event_id,
                attempt.position,
                attempt.subject,
                attempt.attempt,
                _iso(attempt.at),
                attempt.status,
                attempt.latency,
                attempt.error,
                attempt.outcome,
                _iso(attempt.next_attempt_at),
            ),
        )

    def prune_attempts(self, before: datetime) -> int:
        """Forget delivery attempts recorded before ``before`` (retention); returns how many.
        Delivery itself never reads old attempts (its checkpoint and dead letters are kept)."""
        with self._cursor() as cursor:
            cursor.execute(self._sql("DELETE FROM webhook_attempts WHERE at < ?"), (_iso(before),))
            return int(cursor.rowcount or 0)

    def attempts(self, subscription_id: str, event_id: str | None = None, limit: int = 100) -> list[DeliveryAttempt]:
        where, params = "subscription_id = ?", [subscription_id]
        if event_id is not None:
            where += " AND event_id = ?"
            params.append(event_id)
        rows = self._execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM webhook_attempts WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [self._attempt(r) for r in reversed(rows)]

    def attempt_page(
        self, subscription_id: str, *, event_id: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[tuple[int, DeliveryAttempt]]:
        """Newest first, with each row's id: the rows older than ``before`` (an id from a
        previous page), for keyset pagination."""
        where, params = "subscription_id = ?", [subscription_id]
        if event_id is not None:
            where += " AND event_id = ?"
            params.append(event_id)
        if before is not None:
            where += " AND id < ?"
            params.append(before)
        rows = self._execute(
            f"SELECT id, {_ATTEMPT_COLUMNS} FROM webhook_attempts WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [(int(r[0]), self._attempt(r[1:])) for r in rows]

    @staticmethod
    def _attempt(r: tuple[Any, ...]) -> DeliveryAttempt:
        return DeliveryAttempt(r[0], r[1], int(r[2]), r[3], int(r[4]), _dt(r[5]), r[6], float(r[7]), r[8], r[9], _dt(r[10]))  # type: ignore[arg-type]

    def add_dead_letter(self, dead_letter: DeadLetter) -> None:
        d = dead_letter
        self._execute(
            f"INSERT INTO webhook_dead_letters ({_DEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (subscription_id, event_id) DO UPDATE SET position = excluded.position, "
            "subject = excluded.subject, type = excluded.type, reason = excluded.reason, "
            "attempts = excluded.attempts, at = excluded.at, headers = excluded.headers, body = excluded.body, "
            "redelivering = excluded.redelivering",
            (
                d.subscription_id,
                d.event_id,
                d.position,
                d.subject,
                d.type,
                d.reason,
                d.attempts,
                _iso(d.at),
                json.dumps(dict(d.message.headers)),
                bytes(d.message.body),
                int(d.redelivering),
            ),
        )

    def dead_letters(self, subscription_id: str | None = None, limit: int = 100) -> list[DeadLetter]:
        if subscription_id is None:
            rows = self._execute(
                f"SELECT {_DEAD_COLUMNS} FROM webhook_dead_letters ORDER BY subscription_id, position LIMIT ?",
                (limit,),
            )
        else:
            rows = self._execute(
                f"SELECT {_DEAD_COLUMNS} FROM webhook_dead_letters WHERE subscription_id = ? "
                "ORDER BY position LIMIT ?",
                (subscription_id, limit),
            )
        return [self._dead_letter(r) for r in rows]

    def dead_letter_page(self, subscription_id: str, *, limit: int = 50, after_position: int = -1) -> list[DeadLetter]:
        """A subscription's dead letters in position order, after ``after_position`` (keyset pagination)."""
        rows = self._execute(
            f"SELECT {_DEAD_COLUMNS} FROM webhook_dead_letters WHERE subscription_id = ? AND position > ? "
            "ORDER BY position LIMIT ?",
            (subscription_id, after_position, limit),
        )
        return [self._dead_letter(r) for r in rows]

    def redeliver(self, subscription_id: str, event_id: str) -> DeadLetter | None:
        self._execute(
            "UPDATE webhook_dead_letters SET redelivering = 1 WHERE subscription_id = ? AND event_id = ?",
            (subscription_id, event_id),
        )
        rows = self._execute(
            f"SELECT {_DEAD_COLUMNS} FROM webhook_dead_letters WHERE subscription_id = ? AND event_id = ?",
            (subscription_id, event_id),
        )
        return self._dead_letter(rows[0]) if rows else None

    def redeliveries(self, subscription_id: str) -> list[DeadLetter]:
        rows = self._execute(
            f"SELECT {_DEAD_COLUMNS} FROM webhook_dead_letters WHERE subscription_id = ? AND redelivering = 1 "
            "ORDER BY position",
            (subscription_id,),
        )
        return [self._dead_letter(r) for r in rows]

    def resolve_dead_letter(self, subscription_id: str, event_id: str) -> None:
        self._execute(
            "DELETE FROM webhook_dead_letters WHERE subscription_id = ? AND event_id = ?", (subscription_id, event_id)
        )

    @staticmethod
    def _dead_letter(row: tuple[Any, ...]) -> DeadLetter:
        message = EncodedMessage(json.loads(row[8]), bytes(row[9]))
        return DeadLetter(
            row[0], row[1], int(row[2]), row[3], row[4], row[5], int(row[6]), _dt(row[7]), message, bool(row[10])  # type: ignore[arg-type]
        )


def connect_factory(dsn_or_path: str) -> Callable[[], SqlWebhookStore]:
    """``postgresql://...`` -> PostgreSQL, anything else is a SQLite file path."""
    if dsn_or_path.startswith(("postgres://", "postgresql://")):
        return lambda: SqlWebhookStore.postgres(dsn_or_path)
    return lambda: SqlWebhookStore.sqlite(dsn_or_path)
