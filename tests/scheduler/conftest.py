"""Fixtures for the scheduler tests: a store per backend, a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore, open_event_store
from tests.scheduler.support import T0


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        opened = open_event_store("memory")
    else:
        opened = open_event_store("sqlite", sqlite_path=tmp_path / "events.sqlite3")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)
