"""A lease on a PostgreSQL session advisory lock.

The lock belongs to one dedicated connection: it is held exactly as long as that session
lives. A holder that dies (SIGKILL, crash, host lost) closes its socket and the server
frees the lock at once (or, for a silent network loss, after the TCP keepalive probes set
below: ~15 s), so a standby's next ``try_acquire`` wins. The holder checks its session
with a round trip (``still_held``); a failed check means the lock may be someone else's.
"""

from __future__ import annotations

import hashlib
import logging
import threading

import psycopg

from adapters.eventstore.settings import postgres_conninfo

log = logging.getLogger(__name__)

# Detect a dead peer quickly on both ends (client: libpq options; server: session GUCs).
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
_SERVER_KEEPALIVE = ("SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2",
                     "SET tcp_keepalives_count = 3")


def lease_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lease name (same in every process)."""
    digest = hashlib.blake2b(f"lrm-lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLease:
    def __init__(self, url: str, name: str, *, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.name = name
        self.key = lease_key(name)
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from the guard and from close()

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        with self._lock:
            if self._conn is not None:
                return True
            try:
                conn = psycopg.connect(postgres_conninfo(self.url), autocommit=True,
                                       connect_timeout=max(1, int(self.connect_timeout)),
                                       application_name=f"lrm-lease:{self.name}"[:63], **_KEEPALIVE)
            except psycopg.Error as error:
                log.warning("lease %s: cannot connect: %s", self.name, error)
                return False
            try:
                for statement in _SERVER_KEEPALIVE:
                    conn.execute(statement)
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            except psycopg.Error as error:
                log.warning("lease %s: cannot try the lock: %s", self.name, error)
                conn.close()
                return False
            if not (row and row[0]):
                conn.close()
                return False
            self._conn = conn
            return True

    def still_held(self) -> bool:
        with self._lock:
            conn = self._conn
            if conn is None:
                return False
            try:
                # Our own session must still be there and still own the lock.
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objid = (%s::bigint & 4294967295)::oid"
                    " AND classid = ((%s::bigint >> 32) & 4294967295)::oid",
                    (self.key, self.key),
                ).fetchone()
            except psycopg.Error as error:
                log.warning("lease %s: session lost: %s", self.name, error)
                self._drop()
                return False
            if not (row and row[0]):
                self._drop()
                return False
            return True

    def release(self) -> None:
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except psycopg.Error:
                pass  # closing the session below frees it anyway
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass
