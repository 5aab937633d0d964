from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore.factory import open_event_store
from adapters.eventstore.store import EventStore
from tests.workers.conftest import START, seeded_templates  # noqa: F401 - shared fixtures data


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START.replace(hour=7))


@pytest.fixture
def store() -> Iterator[EventStore]:
    with open_event_store("memory") as opened:
        yield opened
