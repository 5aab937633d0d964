"""EventStoreDB backends for the store contract tests.

``esdb-fake`` (the in-process fake client) runs every time; ``esdb`` runs against a real
server when ``LRM_TEST_ESDB_URI`` is set, e.g. after ``docker compose up eventstoredb``:

    LRM_TEST_ESDB_URI='esdb://localhost:2113?Tls=false' ./scripts/test tests/store_esdb

Each test gets its own namespace (streams and event types prefixed with ``t_<hex>/``), so
tests never see each other's events on a shared server. Read models and checkpoints stay
in SQLite, as in an EventStoreDB deployment.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.eventstore import EventStore, open_event_store
from adapters.eventstore.esdb.fake_client import FAKE_SCHEME, drop_fake_server
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore

ESDB_URI = os.environ.get("LRM_TEST_ESDB_URI", "")
NO_SERVER = "set LRM_TEST_ESDB_URI (e.g. esdb://localhost:2113?Tls=false) to run against EventStoreDB"
REAL = pytest.param("esdb", marks=pytest.mark.skipif(not ESDB_URI, reason=NO_SERVER))
BACKENDS = ["esdb-fake", REAL]


@dataclass
class EsdbBackend:
    """Same surface as ``tests.store.conftest.Backend``: reopening ``event_store()``
    connects a new client to the same server (a restart)."""

    kind: str
    tmp: Path
    schema: str = ""
    _opened: list[Any] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"{FAKE_SCHEME}{self.schema}" if self.kind == "esdb-fake" else ESDB_URI

    @property
    def readmodels_path(self) -> Path:
        return self.tmp / "readmodels.sqlite3"

    def settings(self) -> dict[str, str]:
        return {"kind": "esdb", "esdb_uri": self.uri, "schema": self.schema,
                "readmodels_path": str(self.readmodels_path)}

    def event_store(self, **kwargs: Any) -> EventStore:
        store = open_event_store("esdb", esdb_uri=self.uri, schema=self.schema, **kwargs)
        self._opened.append(store)
        return store

    def read_models(self) -> SqliteReadModelStore:
        models = SqliteReadModelStore(self.readmodels_path)
        self._opened.append(models)
        return models

    def close(self) -> None:
        for opened in reversed(self._opened):
            opened.close()
        self._opened.clear()
        if self.kind == "esdb-fake":
            drop_fake_server(self.schema)


def new_backend(kind: str, tmp: Path) -> EsdbBackend:
    return EsdbBackend(kind, tmp, schema=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EsdbBackend]:
    b = new_backend(request.param, tmp_path)
    yield b
    b.close()


@pytest.fixture
def store(backend: EsdbBackend) -> EventStore:
    return backend.event_store()


@pytest.fixture
def make_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], EsdbBackend]]:
    """For hypothesis tests, which cannot use function-scoped fixtures per example."""
    made: list[EsdbBackend] = []

    def make(kind: str) -> EsdbBackend:
        b = new_backend(kind, tmp_path_factory.mktemp(kind))
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
