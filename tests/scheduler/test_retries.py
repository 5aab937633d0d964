"""Targeted retries never change a decision: a scheduler that decides a queued instance
again only when a change could fit it places exactly what one that re-decides the whole
queue on every change places, at the same passes, on random fleets and event streams
(releases, cancelled drains, workers added, getting ready, stopping, restarting, time
passing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from adapters.clock import VirtualClock
from adapters.eventstore import open_event_store
from domain.context import CommandContext
from domain.errors import DomainError
from domain.instance import InstanceState
from domain.placement import PlacementRequest
from domain.worker import Worker, WorkerState
from processors.scheduler import Scheduler, SchedulerSettings
from processors.scheduler.retries import RetryFilter
from tests.scheduler.support import T0, new_instance, requirements, template

LICENSES = ("PERSONAL", "ENTERPRISE", "EVALUATION")


class RetryEverything(Scheduler):
    """The scheduler without the filter: every queued instance is decided again whenever the
    capacity epoch moved (what the filter must agree with)."""

    def _may_fit(self, instance_id: str, now: Any) -> bool:
        return True


class Counting(Scheduler):
    """The scheduler as it is, counting the retries its filter skipped."""

    skipped = 0

    def _may_fit(self, instance_id: str, now: Any) -> bool:
        fits = super()._may_fit(instance_id, now)
        self.skipped += not fits
        return fits


worker_st = st.fixed_dictionaries({
    "license": st.sampled_from(LICENSES),
    "cpu": st.sampled_from([4, 8]),
    "nodes": st.integers(3, 12),
    "ports": st.integers(2, 4),
    "state": st.sampled_from(["RUNNING", "PROVISIONING"]),
    "ready_in": st.sampled_from([0, 60, 240]),
})
booking_st = st.fixed_dictionaries({
    "start": st.one_of(st.none(), st.integers(0, 16).map(lambda q: timedelta(minutes=15 * q))),
    "minutes": st.sampled_from([30, 60, 120]),
    "cpu": st.sampled_from([1, 2, 4, 8]),
    "nodes": st.integers(1, 5),
    "ports": st.integers(0, 2),
    "licenses": st.sets(st.sampled_from(LICENSES)),
})
step_st = st.one_of(
    st.tuples(st.just("book"), booking_st),
    st.tuples(st.just("book"), booking_st),
    st.tuples(st.just("book"), booking_st),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("advance"), st.sampled_from([5, 20, 60])),
    st.tuples(st.just("worker"), worker_st),
    st.tuples(st.just("ready"), st.integers(0, 5)),
    st.tuples(st.just("ready"), st.integers(0, 5)),
    st.tuples(st.just("drain"), st.integers(0, 5)),
    st.tuples(st.just("undrain"), st.integers(0, 5)),
    st.tuples(st.just("stop"), st.integers(0, 5)),
    st.tuples(st.just("restart"), st.integers(0, 5)),
    st.tuples(st.just("lose"), st.integers(0, 5)),
)


def _worker(n: int, spec: dict[str, Any], at: Any) -> Worker:
    tpl = template(f"w{n}", license_type=spec["license"], cpu=spec["cpu"], memory=spec["cpu"] * 4,
                   max_nodes=spec["nodes"], ports=(2000, 2000 + spec["ports"] - 1))
    ctx = CommandContext(at=at, actor="test")
    worker = Worker.request(tpl, ctx, worker_id=f"Worker-{n:02d}", expected_ready_at=at)
    worker.start_provisioning(f"i-{n}", ctx, expected_ready_at=at + timedelta(minutes=spec["ready_in"]))
    if spec["state"] == "RUNNING":
        worker.mark_ready("10.0.0.1", ctx)
    return worker


def _change_worker(worker: Worker, kind: str, ctx: CommandContext) -> None:
    if kind == "ready" and worker.state is WorkerState.PROVISIONING:
        worker.mark_ready("10.0.0.2", ctx)
    elif kind == "drain" and worker.state is WorkerState.RUNNING:
        worker.start_draining("test", ctx)
    elif kind == "undrain" and worker.state is WorkerState.DRAINING:
        worker.cancel_drain(ctx)
    elif kind == "stop" and worker.state is WorkerState.RUNNING:
        worker.stop("test", ctx, force=True)
        worker.mark_stopped(ctx)
    elif kind == "restart" and worker.state is WorkerState.STOPPED:
        worker.request_restart(ctx, reason="test")


def _apply(store: Any, kind: str, arg: Any, now: Any, workers: list[str], instances: list[str]) -> None:
    ctx = CommandContext(at=now, actor="test")
    if kind == "book":
        req = requirements(cpu=arg["cpu"], memory=arg["cpu"] * 2, nodes=arg["nodes"],
                           ports=tuple(f"p{k}" for k in range(arg["ports"])),
                           license_affinity=tuple(sorted(arg["licenses"])))
        start = None if arg["start"] is None else T0 + arg["start"]
        store.save(new_instance(start, arg["minutes"], req=req, at=now,
                                instance_id=f"LabletInstance-{len(instances):02d}"))
        instances.append(f"LabletInstance-{len(instances):02d}")
    elif kind == "cancel" and instances:
        instance = store.get(instances[arg % len(instances)])
        if instance.is_live:
            instance.terminate("cancelled", ctx)
            store.save(instance)
    elif kind == "worker":
        store.save(_worker(len(workers), arg, now))
        workers.append(f"Worker-{len(workers):02d}")
    elif workers:
        worker = store.get(workers[arg % len(workers)])
        if worker.state is WorkerState.TERMINATED:
            return
        try:
            if kind == "lose":
                worker.terminate("worker_lost", ctx, force=True)
            else:
                _change_worker(worker, kind, ctx)
        except DomainError:
            return
        if worker.pending_events:
            store.save(worker)


def _placements(store: Any, instances: list[str]) -> list[tuple]:
    out = []
    for instance_id in instances:
        instance = store.get(instance_id)
        out.append((instance_id, instance.state.value, instance.worker_id, instance.hold_start, instance.hold_end,
                    tuple(sorted((instance.allocated_ports or {}).items()))))
    return out


def _booking(start_minutes: int, cpu: int = 2, minutes: int = 60, licenses: frozenset = frozenset()) -> dict:
    return {"start": timedelta(minutes=start_minutes), "minutes": minutes, "cpu": cpu, "nodes": 2, "ports": 0,
            "licenses": set(licenses)}


def _fleet(state: str = "RUNNING", ready_in: int = 0, license_type: str = "PERSONAL", cpu: int = 8) -> dict:
    return {"license": license_type, "cpu": cpu, "nodes": 10, "ports": 4, "state": state, "ready_in": ready_in}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# one of each kind of room, so each is met whatever the random ones draw
@example(fleet=[_fleet("PROVISIONING", 240)], steps=[("book", _booking(60)), ("ready", 0)], batch_size=4,
         prune_above=1000)
@example(fleet=[_fleet()], steps=[("drain", 0), ("book", _booking(60)), ("undrain", 0)], batch_size=1, prune_above=0)
@example(fleet=[_fleet(cpu=4)], steps=[("book", _booking(60, cpu=4)), ("book", _booking(60, cpu=4)),
                                       ("cancel", 0)], batch_size=1, prune_above=1000)
@example(fleet=[_fleet(license_type="EVALUATION")],
         steps=[("book", _booking(60, licenses=frozenset({"PERSONAL"}))), ("worker", _fleet())],
         batch_size=4, prune_above=0)
@given(fleet=st.lists(worker_st, min_size=1, max_size=3), steps=st.lists(step_st, min_size=10, max_size=40),
       batch_size=st.sampled_from([1, 4]), prune_above=st.sampled_from([0, 1000]))
def test_targeted_retries_place_what_retrying_everything_places(
    fleet: list[dict], steps: list[Any], batch_size: int, prune_above: int
) -> None:
    stores = [open_event_store("memory"), open_event_store("memory")]
    clock = VirtualClock(T0)
    settings_ = SchedulerSettings(batch_size=batch_size, prune_above=prune_above)
    targeted = Counting(stores[0], clock, settings=settings_)
    everything = RetryEverything(stores[1], clock, settings=settings_)
    workers: list[list[str]] = [[], []]
    instances: list[list[str]] = [[], []]
    for k, store in enumerate(stores):
        for spec in fleet:
            _apply(store, "worker", spec, T0, workers[k], instances[k])
    for kind, arg in steps:
        if kind == "advance":
            clock.advance(timedelta(minutes=arg))
        else:
            for k, store in enumerate(stores):
                _apply(store, kind, arg, clock.now(), workers[k], instances[k])
        targeted.run_until_idle()
        everything.run_until_idle()
        assert _placements(stores[0], instances[0]) == _placements(stores[1], instances[1])
    event("some retries skipped" if targeted.skipped else "none skipped")
    event("some placed" if targeted.totals.placed else "none placed")
    event("some failed" if targeted.totals.failed else "none failed")
    event(f"steps {len(steps) // 10 * 10}+")
    for store in stores:
        store.close()


def test_a_request_is_retried_only_when_a_changed_worker_takes_it_or_it_changed() -> None:
    request = PlacementRequest(
        instance_id="LabletInstance-1", requirements=requirements().resources, node_count=2,
        license_affinity=frozenset(), nested_virt=False, ami_name_pattern=None, ami_min_version=None,
        port_names=(), hold_start=T0, hold_end=T0 + timedelta(hours=1), timeslot_start=T0,
    )
    retries = RetryFilter()
    retries.room_changed("Worker-a")
    retries.failed("LabletInstance-1", request, retries.position)
    asked: list[str] = []

    def takes(worker_id: str, _: PlacementRequest) -> bool:
        asked.append(worker_id)
        return worker_id == "Worker-b"

    assert not retries.may_fit("LabletInstance-1", request, takes)  # nothing changed since
    retries.room_changed("Worker-a")
    assert not retries.may_fit("LabletInstance-1", request, takes) and asked == ["Worker-a"]
    assert not retries.may_fit("LabletInstance-1", request, takes) and asked == ["Worker-a"]  # not asked twice
    later = PlacementRequest.from_dict({**request.to_dict(), "hold_start": (T0 + timedelta(minutes=5)).isoformat()})
    assert retries.may_fit("LabletInstance-1", later, takes)  # the window moved
    retries.room_changed("Worker-b")
    assert retries.may_fit("LabletInstance-1", request, takes)
    retries.failed("LabletInstance-1", request, retries.position)
    retries.everything_changed()  # a template edit
    assert retries.may_fit("LabletInstance-1", request, takes)
