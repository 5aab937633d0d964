"""The background loop: events wake it, it places and instantiates, and it stops cleanly."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from adapters.clock import SystemClock
from adapters.eventstore import open_event_store
from domain.instance import InstanceState
from processors.scheduler import Scheduler
from tests.scheduler.support import new_instance, new_worker, template


def wait_for(condition, timeout: float = 20.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_loop_places_what_arrives_while_it_runs(tmp_path: Path) -> None:
    store = open_event_store("sqlite", sqlite_path=tmp_path / "events.sqlite3", poll_interval=0.005)
    clock = SystemClock()
    now = clock.now()
    scheduler = Scheduler(store, clock)
    scheduler.start()
    try:
        assert scheduler.running
        store.save(new_worker(template(), at=now))
        asap = new_instance(None, 60, at=now)
        later = new_instance(now + timedelta(hours=2), 60, at=now)
        store.save(asap, later)
        assert wait_for(lambda: store.get(asap.id).state is InstanceState.INSTANTIATING)
        assert wait_for(lambda: store.get(later.id).state is InstanceState.SCHEDULED)
    finally:
        scheduler.stop()
        store.close()
    assert not scheduler.running
    assert scheduler.last_error is None
