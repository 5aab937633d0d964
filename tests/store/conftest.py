"""Backends for the store contract tests: memory and SQLite always, PostgreSQL when
``LRM_TEST_POSTGRES_URL`` is set (each test gets its own schema, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.eventstore import EventStore, open_event_store
from adapters.eventstore.factory import drop_schema
from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from adapters.eventstore.readmodel_postgres import PostgresReadModelStore
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore

POSTGRES_URL = os.environ.get("LRM_TEST_POSTGRES_URL", "")
if os.environ.get("LRM_TEST_REQUIRE_POSTGRES") and not POSTGRES_URL:
    raise RuntimeError("LRM_TEST_REQUIRE_POSTGRES is set but LRM_TEST_POSTGRES_URL is not")
BACKENDS = [
    "memory",
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL, reason="set LRM_TEST_POSTGRES_URL to run against PostgreSQL"
            ),
        ],
    ),
]


@dataclass
class Backend:
    """Opens event stores and read-model stores on one backend; closes them at the end.

    ``event_store()`` / ``read_models()`` may be called again to simulate a restart: they
    reopen the same data (except for memory, which shares the one instance).
    """

    kind: str
    tmp: Path
    schema: str = ""
    _opened: list[Any] = field(default_factory=list)
    _memory_store: EventStore | None = None
    _memory_models: MemoryReadModelStore | None = None

    @property
    def sqlite_path(self) -> Path:
        return self.tmp / "events.sqlite3"

    @property
    def readmodels_path(self) -> Path:
        return self.tmp / "readmodels.sqlite3"

    def settings(self) -> dict[str, str]:
        """What a subprocess needs to reopen the same stores."""
        return {"kind": self.kind, "sqlite_path": str(self.sqlite_path),
                "readmodels_path": str(self.readmodels_path),
                "postgres_url": POSTGRES_URL, "schema": self.schema}

    def event_store(self, **kwargs: Any) -> EventStore:
        if self.kind == "memory":
            if self._memory_store is None:
                self._memory_store = open_event_store("memory", **kwargs)
                self._opened.append(self._memory_store)
            return self._memory_store
        store = open_event_store(
            self.kind,  # type: ignore[arg-type]
            sqlite_path=self.sqlite_path,
            postgres_url=POSTGRES_URL,
            schema=self.schema,
            **kwargs,
        )
        self._opened.append(store)
        return store

    def read_models(self) -> Any:
        if self.kind == "memory":
            if self._memory_models is None:
                self._memory_models = MemoryReadModelStore()
            return self._memory_models
        models: Any
        if self.kind == "sqlite":
            models = SqliteReadModelStore(self.readmodels_path)
        else:
            models = PostgresReadModelStore(POSTGRES_URL, self.schema)
        self._opened.append(models)
        return models

    def close(self) -> None:
        for opened in reversed(self._opened):
            opened.close()
        self._opened.clear()
        if self.kind == "postgres":
            drop_schema(POSTGRES_URL, self.schema)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path, schema=f"t_{uuid.uuid4().hex[:12]}")
    yield b
    b.close()


@pytest.fixture
def store(backend: Backend) -> EventStore:
    return backend.event_store()


@pytest.fixture
def make_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Backend]]:
    """For hypothesis tests, which cannot use function-scoped fixtures per example."""
    made: list[Backend] = []

    def make(kind: str) -> Backend:
        b = Backend(kind, tmp_path_factory.mktemp(kind), schema=f"t_{uuid.uuid4().hex[:12]}")
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
