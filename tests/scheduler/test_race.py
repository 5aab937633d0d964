"""Two schedulers at once never overbook: threads on SQLite and PostgreSQL, OS processes
on PostgreSQL, over a fleet with fewer slots than requests. Afterwards every worker's
ledger is checked at every instant, ports are unique among overlapping holds, every
instance was scheduled at most once and each SCHEDULED instance's worker holds it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore, open_event_store
from domain.instance import InstanceState
from processors.scheduler import PassReport, Scheduler, SchedulerSettings
from tests.conftest import POSTGRES_URL_ENV
from tests.scheduler.support import T0, check_invariants, new_instance, new_worker, requirements, template

WORKERS = 6
SLOTS_PER_WORKER = 3  # 12 cpu, 4 cpu each
REQUESTS = 80
REPO = Path(__file__).resolve().parents[2]


def tight_fleet(store: EventStore) -> tuple[list[str], list[str]]:
    workers = [new_worker(template(f"t{n}", cpu=12, memory=48, ports=(2000, 2005))) for n in range(WORKERS)]
    store.save(*workers)
    # Staggered windows that all overlap one another: placements compete for cpu and ports.
    instances = [
        new_instance(T0 + timedelta(hours=1 + n % 2, minutes=10 * (n % 3)), 90, req=requirements(cpu=4, memory=16))
        for n in range(REQUESTS)
    ]
    store.save(*instances)
    return [w.id for w in workers], [i.id for i in instances]


def race(open_store: Callable[[], EventStore], batch_size: int) -> tuple[EventStore, list[str], list[str]]:
    setup = open_store()
    worker_ids, instance_ids = tight_fleet(setup)
    stores = [open_store() for _ in range(2)]
    schedulers = [Scheduler(s, VirtualClock(T0), settings=SchedulerSettings(batch_size=batch_size), name=f"s{n}")
                  for n, s in enumerate(stores)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    reports: list[PassReport] = []

    def run(scheduler: Scheduler) -> None:
        try:
            barrier.wait()
            reports.append(scheduler.run_until_idle())
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    for s in stores:
        if s is not setup:
            s.close()
    return setup, worker_ids, instance_ids


def assert_no_overbooking(store: EventStore, worker_ids: list[str], instance_ids: list[str]) -> None:
    instances = check_invariants(store, worker_ids, instance_ids)
    for instance in instances.values():
        scheduled = [e for e in store.read_stream(instance.id) if e.event_name == "InstanceScheduled"]
        assert len(scheduled) <= 1
    # a final pass finds nothing to fix, and every slot is used
    Scheduler(store, VirtualClock(T0)).run_until_idle()
    instances = check_invariants(store, worker_ids, instance_ids)
    scheduled = sum(i.state is InstanceState.SCHEDULED for i in instances.values())
    # every hold window overlaps 2:15-2:30, so the fleet holds exactly its slots: all used
    assert scheduled == WORKERS * SLOTS_PER_WORKER


BATCH_SIZES = [1, 8]


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_two_scheduler_threads_on_sqlite(tmp_path: Path, batch_size: int) -> None:
    path = tmp_path / "events.sqlite3"
    store, workers, instances = race(lambda: open_event_store("sqlite", sqlite_path=path), batch_size)
    try:
        assert_no_overbooking(store, workers, instances)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_two_scheduler_threads_on_postgres(postgres_url: str, postgres_schema: str, batch_size: int) -> None:
    store, workers, instances = race(
        lambda: open_event_store("postgres", postgres_url=postgres_url, schema=postgres_schema), batch_size
    )
    try:
        assert_no_overbooking(store, workers, instances)
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_two_scheduler_processes_on_postgres(
    postgres_url: str, postgres_schema: str, tmp_path: Path, batch_size: int
) -> None:
    store = open_event_store("postgres", postgres_url=postgres_url, schema=postgres_schema)
    try:
        workers, instances = tight_fleet(store)
        go = tmp_path / "go"
        env = {**os.environ, "PYTHONPATH": str(REPO), POSTGRES_URL_ENV: postgres_url}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.scheduler.race_runner", postgres_url, postgres_schema, str(go),
                 str(batch_size), f"p{n}"],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for n in range(2)
        ]
        go.touch()
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
        assert_no_overbooking(store, workers, instances)
    finally:
        store.close()
