"""The rebuild benchmark's stamped log holds the domain's real events (scripts/benchmarks/projections_log.py).

A stamped lab decodes through the application's mapper to the same events, field for
field, as the same lab run through the aggregates (only its ids differ), and every
stamped stream rehydrates into a consistent aggregate.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.eventstore import open_event_store
from domain.instance import InstanceState
from scripts.benchmarks.projections_log import (
    EVENTS_PER_LAB,
    SLOT,
    T0,
    WORKER_EVENTS,
    generate,
    ready_worker,
    run_lab,
    worker_template,
)

WORKERS, STUDENTS, LABS = 3, 4, 17


def normalised(state: dict[str, Any], ids: dict[str, str]) -> Any:
    """An event's fields as JSON, the causation ids dropped and the given ids renamed."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if k not in ("causation_id", "correlation_id")}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return ids.get(value, value) if isinstance(value, str) else value

    return walk(json.loads(json.dumps(state, default=str)))


def test_a_stamped_lab_is_the_lab_the_aggregates_write(tmp_path: Path) -> None:
    store = open_event_store("sqlite", sqlite_path=tmp_path / "events.sqlite3")
    try:
        head = generate(store, WORKER_EVENTS * WORKERS + EVENTS_PER_LAB * LABS, WORKERS, STUDENTS, 3,
                        lambda done, total: None)
        events = store.read_all(limit=10_000)
        assert head == len(events) == WORKER_EVENTS * WORKERS + EVENTS_PER_LAB * LABS
        instances = [e.stream_id for e in events if e.topic.endswith("InstanceRequested")]
        workers = [e.stream_id for e in events if e.topic.endswith("WorkerReady")]
        assert len(set(instances)) == LABS and len(workers) == WORKERS

        spec = worker_template()
        owners = set()
        for number, instance_id in enumerate(instances):
            stamped = store.read_stream(instance_id)
            scheduled = next(e for e in stamped if e.topic.endswith("InstanceScheduled"))
            worker_id, owner = scheduled.event.worker_id, stamped[0].event.owner_id
            owners.add(owner)
            slot = number // WORKERS
            assert worker_id == workers[number % WORKERS]
            real_worker = ready_worker(spec, 0, store.get(worker_id).ip)
            real_worker.collect_events()
            real = run_lab(real_worker, owner, number, T0 + timedelta(hours=1) + SLOT * slot)
            real_events = real.collect_events()
            assert [e.topic for e in stamped] == [f"{type(e).__module__}:{type(e).__qualname__}"
                                                  for e in real_events]
            ids = {instance_id: "<instance>", worker_id: "<worker>"}
            real_ids = {real.id: "<instance>", real_worker.id: "<worker>"}
            for mine, theirs in zip(stamped, real_events, strict=True):
                assert normalised(vars(mine.event), ids) == normalised(vars(theirs), real_ids), mine.topic
            worker_side = [e for e in store.read_stream(worker_id)
                           if getattr(e.event, "instance_id", None) == instance_id]
            assert [e.version for e in worker_side] == [WORKER_EVENTS + 2 * slot, WORKER_EVENTS + 2 * slot + 1]
            # The real worker is a fresh one (its first turn): all else the same.
            assert [{**normalised(vars(e.event), ids), "originator_version": None} for e in worker_side] == \
                   [{**normalised(vars(e), real_ids), "originator_version": None} for e in real_worker.collect_events()]
            lab = store.get(instance_id)
            assert lab.state is InstanceState.TERMINATED and lab.owner_id == owner
        assert owners == {f"student-{s}" for s in range(STUDENTS)}
        for n, worker_id in enumerate(workers):  # the streams' versions follow on (0, 1, ...): they rehydrate
            worker = store.get(worker_id)
            labs_on_it = len(range(n, LABS, WORKERS))
            assert worker.version == WORKER_EVENTS + 2 * labs_on_it - 1 and not worker.reservations()
    finally:
        store.close()
