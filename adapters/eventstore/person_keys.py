"""Per-person keys (``processors.ports.personal_data.PersonKeys``): in memory, SQLite, PostgreSQL.

Keys sit beside the events (the SQLite file, the PostgreSQL schema) in ``lrm_person_keys``,
looked up by the SHA-256 of the person's identity. The SQL stores cache what they read for
``cache_seconds``: that bounds how long another process may still decrypt a person forgotten
here, and the erasure waits that long before it rebuilds the read models.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from adapters.eventstore.settings import check_identifier, postgres_conninfo
from processors.ports.personal_data import PersonKey

KEY_BYTES = 32
DEFAULT_CACHE_SECONDS = 2.0
TABLE = "lrm_person_keys"


def person_ref(person: str) -> str:
    return hashlib.sha256(person.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> PersonKey:
    return PersonKey(subject_id=str(uuid.uuid4()), key=os.urandom(KEY_BYTES))


class MemoryPersonKeys:
    """For the in-memory event store (tests, simulation): keys live as long as the events."""

    cache_seconds = 0.0

    def __init__(self) -> None:
        self._by_ref: dict[str, PersonKey] = {}
        self._by_subject: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def key_for(self, person: str) -> PersonKey:
        ref = person_ref(person)
        with self._lock:
            found = self._by_ref.get(ref)
            if found is None:
                found = self._by_ref[ref] = new_key()
                self._by_subject[found.subject_id] = found.key
            return found

    def key_of(self, subject_id: str) -> bytes | None:
        return self._by_subject.get(subject_id)

    def forget(self, person: str) -> str | None:
        with self._lock:
            found = self._by_ref.pop(person_ref(person), None)
            if found is None:
                return None
            self._by_subject.pop(found.subject_id, None)
            return found.subject_id

    def close(self) -> None:
        """Nothing to release: the keys go with the process, like the events."""


class _CachedSqlKeys:
    """The cache and the lookup rules; subclasses say how to reach their database."""

    def __init__(self, cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._by_ref: dict[str, tuple[float, PersonKey]] = {}
        self._by_subject: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def _fresh(self, cached: tuple[float, Any] | None) -> Any | None:
        """The cached value while younger than ``cache_seconds``, else ``None`` (ask the database)."""
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        return None

    def key_for(self, person: str) -> PersonKey:
        ref = person_ref(person)
        cached: PersonKey | None = self._fresh(self._by_ref.get(ref))
        if cached is not None:
            return cached
        with self._lock:
            found = self._select_by_ref(ref)
            if found is None:
                self._insert(ref, new_key())  # ignored when a racing writer got there first
                found = self._select_by_ref(ref)
            assert found is not None
            now = time.monotonic()
            self._by_ref[ref] = (now, found)
            self._by_subject[found.subject_id] = (now, found.key)
            return found

    def key_of(self, subject_id: str) -> bytes | None:
        cached: bytes | None = self._fresh(self._by_subject.get(subject_id))
        if cached is not None:
            return cached
        with self._lock:
            key = self._select_by_subject(subject_id)
            if key is None:
                self._by_subject.pop(subject_id, None)
            else:
                self._by_subject[subject_id] = (time.monotonic(), key)
            return key

    def forget(self, person: str) -> str | None:
        ref = person_ref(person)
        with self._lock:
            self._by_ref.pop(ref, None)
            subject_id = self._delete(ref)
            if subject_id is not None:
                self._by_subject.pop(subject_id, None)
            return subject_id

    def _select_by_ref(self, ref: str) -> PersonKey | None:
        raise NotImplementedError

    def _select_by_subject(self, subject_id: str) -> bytes | None:
        raise NotImplementedError

    def _insert(self, ref: str, key: PersonKey) -> None:
        raise NotImplementedError

    def _delete(self, ref: str) -> str | None:
        raise NotImplementedError


class SqlitePersonKeys(_CachedSqlKeys):
    def __init__(self, path: str | Path, cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        super().__init__(cache_seconds)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (person_ref TEXT PRIMARY KEY, "
            "subject_id TEXT NOT NULL UNIQUE, key BLOB NOT NULL)"
        )

    def _select_by_ref(self, ref: str) -> PersonKey | None:
        row = self._conn.execute(f"SELECT subject_id, key FROM {TABLE} WHERE person_ref = ?", (ref,)).fetchone()
        return PersonKey(row[0], bytes(row[1])) if row else None

    def _select_by_subject(self, subject_id: str) -> bytes | None:
        row = self._conn.execute(f"SELECT key FROM {TABLE} WHERE subject_id = ?", (subject_id,)).fetchone()
        return bytes(row[0]) if row else None

    def _insert(self, ref: str, key: PersonKey) -> None:
        self._conn.execute(
            f"INSERT OR IGNORE INTO {TABLE} (person_ref, subject_id, key) VALUES (?, ?, ?)",
            (ref, key.subject_id, key.key),
        )

    def _delete(self, ref: str) -> str | None:
        row = self._conn.execute(f"DELETE FROM {TABLE} WHERE person_ref = ? RETURNING subject_id", (ref,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._conn.close()


class PostgresPersonKeys(_CachedSqlKeys):
    def __init__(self, url: str, schema: str | None = None,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        super().__init__(cache_seconds)
        self._table = (sql.Identifier(check_identifier(schema, "schema"), TABLE) if schema
                       else sql.Identifier(TABLE))
        self._conn = psycopg.connect(postgres_conninfo(url), autocommit=True)
        self._run(sql.SQL("CREATE TABLE IF NOT EXISTS {} (person_ref TEXT PRIMARY KEY, "
                          "subject_id TEXT NOT NULL UNIQUE, key BYTEA NOT NULL)"))

    def _run(self, statement: sql.Composable, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(statement.format(self._table), params)

    def _select_by_ref(self, ref: str) -> PersonKey | None:
        row = self._run(sql.SQL("SELECT subject_id, key FROM {} WHERE person_ref = %s"), (ref,)).fetchone()
        return PersonKey(row[0], bytes(row[1])) if row else None

    def _select_by_subject(self, subject_id: str) -> bytes | None:
        row = self._run(sql.SQL("SELECT key FROM {} WHERE subject_id = %s"), (subject_id,)).fetchone()
        return bytes(row[0]) if row else None

    def _insert(self, ref: str, key: PersonKey) -> None:
        self._run(sql.SQL("INSERT INTO {} (person_ref, subject_id, key) VALUES (%s, %s, %s) "
                          "ON CONFLICT (person_ref) DO NOTHING"), (ref, key.subject_id, key.key))

    def _delete(self, ref: str) -> str | None:
        row = self._run(sql.SQL("DELETE FROM {} WHERE person_ref = %s RETURNING subject_id"), (ref,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._conn.close()
