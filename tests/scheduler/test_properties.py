"""Random fleets and random booking streams through the real scheduler (in-memory store).

Afterwards: no worker is overbooked at any instant, ports are unique among overlapping
holds, every SCHEDULED instance's worker holds it, every PENDING instance has a
``PlacementFailed`` saying why, and replaying each recorded decision's inputs through
the policy gives the same decision.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.clock import VirtualClock
from adapters.eventstore import open_event_store
from domain.context import CommandContext
from domain.instance import InstanceState
from domain.worker import WorkerState
from processors.scheduler import Scheduler, SchedulerSettings
from processors.scheduler.replay import replay_record
from tests.scheduler.support import T0, check_invariants, new_instance, new_worker, requirements, template

LICENSES = ("PERSONAL", "ENTERPRISE", "EVALUATION")

workers_st = st.lists(
    st.fixed_dictionaries({
        "license": st.sampled_from(LICENSES),
        "cpu": st.sampled_from([4, 8, 16]),
        "nodes": st.integers(3, 20),
        "ports": st.integers(2, 6),
        "state": st.sampled_from([WorkerState.RUNNING, WorkerState.RUNNING, WorkerState.PENDING]),
        "ready_in": st.sampled_from([0, 30, 120]),
    }),
    min_size=1, max_size=4,
)
booking_st = st.fixed_dictionaries({
    "start": st.one_of(st.none(), st.integers(0, 24).map(lambda q: timedelta(minutes=15 * q))),
    "minutes": st.sampled_from([30, 60, 120]),
    "cpu": st.sampled_from([1, 2, 2, 4, 8]),
    "nodes": st.integers(1, 5),
    "ports": st.integers(0, 3),
    "licenses": st.sets(st.sampled_from(LICENSES), min_size=2),
})
step_st = st.one_of(
    st.tuples(st.just("book"), booking_st),
    st.tuples(st.just("book"), booking_st),
    st.tuples(st.just("book"), booking_st),
    st.tuples(st.just("pass"), st.just(None)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("lose"), st.integers(0, 5)),
    st.tuples(st.just("advance"), st.sampled_from([5, 20, 60])),
    st.tuples(st.just("worker"), workers_st.filter(bool).map(lambda ws: ws[0])),
)


def make_worker(n: int, spec: dict[str, Any], at: Any) -> Any:
    tpl = template(f"w{n}", license_type=spec["license"], cpu=spec["cpu"], memory=spec["cpu"] * 4,
                   max_nodes=spec["nodes"], ports=(2000, 2000 + spec["ports"] - 1))
    worker = new_worker(tpl, state=spec["state"], at=at)
    if spec["state"] is WorkerState.PENDING:
        worker = new_worker(tpl, state=WorkerState.PENDING, at=at)
        worker.start_provisioning("i-x", CommandContext(at=at, actor="t"),
                                  expected_ready_at=at + timedelta(minutes=spec["ready_in"]))
    return worker


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=workers_st, steps=st.lists(step_st, min_size=1, max_size=30), batch_size=st.sampled_from([1, 4]),
       prune_above=st.sampled_from([0, 1000]))
def test_random_fleets_and_booking_streams(
    fleet: list[dict[str, Any]], steps: list[Any], batch_size: int, prune_above: int
) -> None:
    store = open_event_store("memory")
    clock = VirtualClock(T0)
    scheduler = Scheduler(store, clock, settings=SchedulerSettings(batch_size=batch_size, prune_above=prune_above))
    workers = [make_worker(n, spec, T0) for n, spec in enumerate(fleet)]
    if workers:
        store.save(*workers)
    worker_ids = [w.id for w in workers]
    instance_ids: list[str] = []
    for kind, arg in steps:
        now = clock.now()
        ctx = CommandContext(at=now, actor="test")
        if kind == "book":
            req = requirements(cpu=arg["cpu"], memory=arg["cpu"] * 2, nodes=arg["nodes"],
                               ports=tuple(f"p{k}" for k in range(arg["ports"])),
                               license_affinity=tuple(sorted(arg["licenses"])))
            start = None if arg["start"] is None else T0 + arg["start"]
            instance = new_instance(start, arg["minutes"], req=req, at=now)
            store.save(instance)
            instance_ids.append(instance.id)
        elif kind == "pass":
            scheduler.run_pass()
        elif kind == "cancel" and instance_ids:
            instance = store.get(instance_ids[arg % len(instance_ids)])
            if instance.is_live:
                instance.terminate("cancelled", ctx)
                store.save(instance)
        elif kind == "lose" and worker_ids:
            worker = store.get(worker_ids[arg % len(worker_ids)])
            if worker.state is not WorkerState.TERMINATED:
                worker.terminate("worker_lost", ctx, force=True)
                store.save(worker)
        elif kind == "advance":
            clock.advance(timedelta(minutes=arg))
        elif kind == "worker":
            worker = make_worker(len(worker_ids), arg, now)
            store.save(worker)
            worker_ids.append(worker.id)
    scheduler.run_until_idle()

    instances = check_invariants(store, worker_ids, instance_ids)
    for instance in instances.values():
        if instance.state is InstanceState.PENDING:
            events = store.read_stream(instance.id)
            since_queued = [e for e in events if e.version > _last_queued_version(events)]
            assert any(e.event_name == "PlacementFailed" for e in since_queued), [e.event_name for e in events]
            assert instance.last_placement_failure
    replayed = 0
    for instance_id in instance_ids:
        for stored in store.read_stream(instance_id):
            if stored.event_name in ("PlacementDecided", "PlacementFailed"):
                record = stored.event.decision
                if "request" in record.get("inputs", {}):
                    assert replay_record(store, record) == record
                    replayed += 1
    event(f"replayed {'none' if not replayed else 'some' if replayed < 5 else 'many'}")
    event(f"placed {'some' if any(i.worker_id for i in instances.values()) else 'none'}")
    store.close()


def _last_queued_version(events: list[Any]) -> int:
    return max((e.version for e in events if e.event_name in ("InstanceRequested", "InstanceRequeued")), default=0)
