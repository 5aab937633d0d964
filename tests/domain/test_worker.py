"""Worker: lifecycle from every state, reservation rules, stop/terminate guards, replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InsufficientCapacity, InvalidInput, NotFound
from domain.resources import Resources
from domain.worker import WORKER_TRANSITIONS, Worker, WorkerState
from domain.worker_template import WorkerTemplateSpec

W = WorkerState
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
CTX = CommandContext(at=T0, actor="autoscaler")

SPEC_TABLE = {
    "PENDING": {"PROVISIONING", "FAILED", "TERMINATED"},
    "PROVISIONING": {"RUNNING", "FAILED", "TERMINATED"},
    "RUNNING": {"DRAINING", "STOPPING", "TERMINATED"},
    "DRAINING": {"RUNNING", "STOPPING", "TERMINATED"},
    "STOPPING": {"STOPPED", "TERMINATED"},
    "STOPPED": {"PROVISIONING", "TERMINATED"},
    "FAILED": {"TERMINATED"},
    "TERMINATED": set(),
}

TEMPLATE = WorkerTemplateSpec.from_dict({
    "name": "personal-small",
    "instance_type": "m5zn.metal",
    "capacity": {"cpu_cores": 8, "memory_gb": 32, "storage_gb": 100},
    "license_type": "PERSONAL",
    "max_nodes": 10,
    "ami_pattern": "CML-2.9.*",
    "region": "us-east-1",
    "port_range": {"start": 2000, "end": 2003},
    "hourly_cost": 3.96,
    "drain_timeout_hours": 2,
})
SMALL = Resources(2, 8, 25)


def new_worker() -> Worker:
    return Worker.request(TEMPLATE, CTX, reason="demand at 09:00")


PATHS: dict[WorkerState, list[Callable[[Worker, CommandContext], Any]]] = {
    W.PENDING: [],
    W.PROVISIONING: [lambda w, c: w.start_provisioning("i-0abc", c)],
}
PATHS[W.RUNNING] = [*PATHS[W.PROVISIONING], lambda w, c: w.mark_ready("10.0.0.5", c)]
PATHS[W.DRAINING] = [*PATHS[W.RUNNING], lambda w, c: w.start_draining("idle", c)]
PATHS[W.STOPPING] = [*PATHS[W.RUNNING], lambda w, c: w.stop("idle", c)]
PATHS[W.STOPPED] = [*PATHS[W.STOPPING], lambda w, c: w.mark_stopped(c)]
PATHS[W.FAILED] = [*PATHS[W.PROVISIONING], lambda w, c: w.provisioning_failed("InsufficientInstanceCapacity", c)]
PATHS[W.TERMINATED] = [lambda w, c: w.terminate("admin", c)]


def worker_in(state: WorkerState) -> Worker:
    worker = new_worker()
    for step in PATHS[state]:
        step(worker, CTX)
    assert worker.state is state
    worker.collect_events()
    return worker


# command → (call, target, legal sources, no-op sources)
COMMANDS: dict[str, tuple[Callable[[Worker], Any], WorkerState, frozenset, frozenset]] = {
    "start_provisioning": (lambda w: w.start_provisioning("i-new", CTX), W.PROVISIONING, frozenset({W.PENDING}),
                           frozenset()),
    "mark_ready": (lambda w: w.mark_ready("10.0.0.9", CTX), W.RUNNING, frozenset({W.PROVISIONING}), frozenset()),
    "provisioning_failed": (lambda w: w.provisioning_failed("boot timeout", CTX), W.FAILED,
                            frozenset({W.PENDING, W.PROVISIONING}), frozenset()),
    "start_draining": (lambda w: w.start_draining("idle", CTX), W.DRAINING, frozenset({W.RUNNING}), frozenset()),
    "cancel_drain": (lambda w: w.cancel_drain(CTX), W.RUNNING, frozenset({W.DRAINING}), frozenset()),
    "stop": (lambda w: w.stop("idle", CTX), W.STOPPING, frozenset({W.RUNNING, W.DRAINING}), frozenset()),
    "mark_stopped": (lambda w: w.mark_stopped(CTX), W.STOPPED, frozenset({W.STOPPING}), frozenset()),
    "request_restart": (lambda w: w.request_restart(CTX), W.PROVISIONING, frozenset({W.STOPPED}), frozenset()),
    "terminate": (lambda w: w.terminate("admin", CTX), W.TERMINATED, frozenset(W) - {W.TERMINATED}, frozenset()),
}
CASES = [(name, state) for name in COMMANDS for state in W]


def test_transition_table() -> None:
    assert {s.value: {t.value for t in n} for s, n in WORKER_TRANSITIONS.items()} == SPEC_TABLE


@pytest.mark.parametrize(("command", "state"), CASES, ids=[f"{c}-from-{s.value}" for c, s in CASES])
def test_every_command_from_every_state(command: str, state: WorkerState) -> None:
    call, target, legal, _ = COMMANDS[command]
    worker = worker_in(state)
    if state in legal:
        call(worker)
        assert worker.collect_events()
        assert worker.state is target and target.value in SPEC_TABLE[state.value]
    else:
        version = worker.version
        with pytest.raises(IllegalTransition):
            call(worker)
        assert (worker.state, worker.version, worker.collect_events()) == (state, version, [])


def test_every_spec_edge_is_reachable_by_a_command() -> None:
    reached = {(s.value, target.value) for _, target, legal, _ in COMMANDS.values() for s in legal}
    assert reached == {(s, t) for s, n in SPEC_TABLE.items() for t in n}


def test_expected_ready_times_use_the_template() -> None:
    worker = new_worker()
    assert worker.expected_ready_at == T0 + timedelta(minutes=20)
    for step in PATHS[W.STOPPED]:
        step(worker, CTX)
    later = CommandContext(at=T0 + 5 * H)
    worker.request_restart(later)
    assert worker.expected_ready_at == later.at + timedelta(minutes=5)


def test_repeated_reports_are_no_ops() -> None:
    worker = worker_in(W.PROVISIONING)
    worker.start_provisioning("i-0abc", CTX)
    worker.mark_ready("10.0.0.5", CTX)
    worker.mark_ready("10.0.0.5", CTX)
    assert [e.event_name for e in worker.collect_events()] == ["WorkerReady"]


def test_a_drain_has_a_deadline_only_when_given_a_timeout() -> None:
    worker = worker_in(W.RUNNING)
    worker.start_draining("idle", CTX)
    assert worker.state is W.DRAINING and worker.drain_deadline is None  # never ends a lab
    worker.cancel_drain(CTX)
    worker.start_draining("admin", CTX, timeout_hours=2)
    assert worker.drain_deadline == T0 + 2 * H
    worker.cancel_drain(CTX)
    assert worker.drain_deadline is None and worker.state is W.RUNNING


@pytest.mark.parametrize("bad", [0, -1, True])
def test_a_drain_timeout_must_be_positive(bad: object) -> None:
    with pytest.raises(InvalidInput):
        worker_in(W.RUNNING).start_draining("admin", CTX, timeout_hours=bad)  # type: ignore[arg-type]


# -- reservations -------------------------------------------------------------------------------

RESERVABLE = {W.PENDING, W.PROVISIONING, W.RUNNING, W.STOPPED}


@pytest.mark.parametrize("state", list(W), ids=lambda s: s.value)
def test_reservations_are_accepted_only_in_reservable_states(state: WorkerState) -> None:
    worker = worker_in(state)
    reserve = lambda: worker.reserve("i-1", SMALL, 2, ["serial_1"], T0 + 2 * H, T0 + 3 * H, CTX)  # noqa: E731
    if state in RESERVABLE:
        assert reserve() == {"serial_1": 2000}
        (event,) = worker.collect_events()
        assert event.event_name == "CapacityReserved"
    else:
        with pytest.raises(IllegalTransition):
            reserve()
        assert worker.collect_events() == []


def test_ports_lowest_free_first_and_never_shared_by_overlapping_holds() -> None:
    worker = worker_in(W.RUNNING)
    a = worker.reserve("a", SMALL, 1, ["serial_1", "vnc_1"], T0, T0 + 2 * H, CTX)
    b = worker.reserve("b", SMALL, 1, ["serial_1"], T0 + H, T0 + 3 * H, CTX)
    c = worker.reserve("c", SMALL, 1, ["serial_1", "vnc_1"], T0 + 2 * H, T0 + 4 * H, CTX)  # after a: reuses 2000
    assert (a, b, c) == ({"serial_1": 2000, "vnc_1": 2001}, {"serial_1": 2002}, {"serial_1": 2000, "vnc_1": 2001})
    with pytest.raises(InsufficientCapacity, match="ports"):
        worker.reserve("d", Resources(0.1, 0.1, 0.1), 0, ["a", "b"], T0 + H, T0 + 2 * H, CTX)  # only 2003 free


@pytest.mark.parametrize(("resources", "nodes", "reason"), [
    (Resources(7, 8, 25), 1, "cpu_cores"),  # 2 + 7 > 8 cores
    (Resources(2, 25, 25), 1, "memory_gb"),
    (Resources(2, 8, 76), 1, "storage_gb"),
    (SMALL, 9, "nodes"),  # 2 + 9 > 10 nodes
])
def test_capacity_checked_over_the_whole_window(resources: Resources, nodes: int, reason: str) -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("early", SMALL, 2, [], T0 + 3 * H, T0 + 4 * H, CTX)
    worker.reserve("after", resources, nodes, [], T0 + 4 * H, T0 + 5 * H, CTX)  # back-to-back fits
    with pytest.raises(InsufficientCapacity) as error:
        worker.reserve("late", resources, nodes, [], T0, T0 + 3 * H + timedelta(minutes=1), CTX)
    assert any(r.startswith(reason) for r in error.value.reasons)  # type: ignore[attr-defined]
    assert "late" not in {r.instance_id for r in worker.reservations()}


def test_node_limit_is_the_licence_bound() -> None:
    worker = worker_in(W.RUNNING)
    with pytest.raises(InsufficientCapacity, match="nodes"):
        worker.reserve("big", SMALL, 11, [], T0, T0 + H, CTX)


def test_license_affinity_is_checked() -> None:
    worker = worker_in(W.RUNNING)
    with pytest.raises(Conflict, match="PERSONAL"):
        worker.reserve("i", SMALL, 1, [], T0, T0 + H, CTX, license_affinity=["ENTERPRISE"])
    assert worker.reserve("i", SMALL, 1, [], T0, T0 + H, CTX, license_affinity=["ENTERPRISE", "PERSONAL"]) == {}


def test_reserving_again_is_idempotent_but_a_different_hold_conflicts() -> None:
    worker = worker_in(W.RUNNING)
    ports = worker.reserve("i", SMALL, 1, ["serial_1"], T0, T0 + H, CTX)
    worker.collect_events()
    assert worker.reserve("i", SMALL, 1, ["serial_1"], T0, T0 + H, CTX) == ports
    assert worker.collect_events() == []
    with pytest.raises(Conflict):
        worker.reserve("i", SMALL, 1, ["serial_1"], T0, T0 + 2 * H, CTX)


def test_reserve_validates_its_input() -> None:
    worker = worker_in(W.RUNNING)
    with pytest.raises(InvalidInput):
        worker.reserve("i", SMALL, 1, ["a", "a"], T0, T0 + H, CTX)
    with pytest.raises(InvalidInput):
        worker.reserve("i", SMALL, 1, [], T0 + H, T0, CTX)
    with pytest.raises(InvalidInput):
        worker.reserve("", SMALL, 1, [], T0, T0 + H, CTX)


def test_release_is_idempotent() -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("i", SMALL, 1, ["serial_1"], T0, T0 + H, CTX)
    worker.collect_events()
    assert worker.release("i", CTX, reason="archived") is True
    (event,) = worker.collect_events()
    assert (event.event_name, event.ports, event.reason) == ("CapacityReleased", {"serial_1": 2000}, "archived")
    assert worker.release("i", CTX) is False and worker.collect_events() == []


def test_extension_needs_room_for_the_tail() -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("live", Resources(6, 8, 25), 1, ["serial_1"], T0, T0 + 2 * H, CTX)
    worker.reserve("next", Resources(6, 8, 25), 1, ["serial_1"], T0 + 3 * H, T0 + 4 * H, CTX)
    worker.collect_events()
    extended = worker.extend_reservation("live", T0 + 3 * H, CTX)  # up to the next booking: fits
    assert extended.hold_end == T0 + 3 * H
    before = worker.reservations()
    with pytest.raises(InsufficientCapacity):
        worker.extend_reservation("live", T0 + 3 * H + timedelta(minutes=1), CTX)
    assert worker.reservations() == before  # a refused extension changes nothing
    assert worker.extend_reservation("live", T0 + H, CTX).hold_end == T0 + 3 * H  # not later: no-op
    assert [e.event_name for e in worker.collect_events()] == ["ReservationExtended"]
    with pytest.raises(NotFound):
        worker.extend_reservation("ghost", T0 + 5 * H, CTX)


def test_a_draining_worker_takes_no_new_work_but_extends_live_labs() -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("live", SMALL, 1, [], T0, T0 + H, CTX)
    worker.start_draining("scale_down", CTX)
    with pytest.raises(IllegalTransition):
        worker.reserve("new", SMALL, 1, [], T0, T0 + H, CTX)
    worker.extend_reservation("live", T0 + 2 * H, CTX)
    assert worker.ledger.get("live").hold_end == T0 + 2 * H  # type: ignore[union-attr]


# -- stopping and terminating never interrupt a lab unless forced -----------------------------------

@pytest.mark.parametrize("state", [W.RUNNING, W.DRAINING])
def test_stop_refused_while_a_reservation_is_active(state: WorkerState) -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("live", SMALL, 1, [], T0, T0 + H, CTX)
    worker.reserve("future", SMALL, 1, [], T0 + 5 * H, T0 + 6 * H, CTX)
    if state is W.DRAINING:
        worker.start_draining("idle", CTX)
    with pytest.raises(Conflict, match="live"):
        worker.stop("idle", CTX)
    worker.stop("idle", CommandContext(at=T0 + H))  # the hold has ended: the future one may stay
    assert worker.state is W.STOPPING
    assert [r.instance_id for r in worker.reservations()] == ["live", "future"]


def test_forced_stop_lists_the_interrupted_labs() -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("live", SMALL, 1, [], T0, T0 + H, CTX)
    worker.start_draining("idle", CTX)
    worker.collect_events()
    worker.stop("drain_timeout", CommandContext(at=T0 + timedelta(minutes=30)), force=True)
    (event,) = worker.collect_events()
    assert (event.forced, event.active_instance_ids) == (True, ["live"])


def test_terminate_drops_reservations_and_lists_them() -> None:
    worker = worker_in(W.RUNNING)
    worker.reserve("live", SMALL, 1, [], T0, T0 + H, CTX)
    worker.reserve("future", SMALL, 1, [], T0 + 5 * H, T0 + 6 * H, CTX)
    with pytest.raises(Conflict):
        worker.terminate("scale_down", CTX)
    with pytest.raises(InvalidInput):
        worker.terminate("bored", CTX, force=True)
    assert worker.terminate("worker_lost", CTX, force=True) == ["future", "live"]
    assert worker.reservations() == [] and worker.termination_reason == "worker_lost"
    assert worker.release("live", CTX) is False


def test_provisioning_failure_lists_the_affected_reservations() -> None:
    worker = worker_in(W.PROVISIONING)
    worker.reserve("b", SMALL, 1, [], T0 + H, T0 + 2 * H, CTX)
    worker.reserve("a", SMALL, 1, [], T0 + H, T0 + 2 * H, CTX)
    worker.collect_events()
    worker.provisioning_failed("boot timeout", CTX)
    (event,) = worker.collect_events()
    assert event.affected_instance_ids == ["a", "b"] and worker.last_error == "boot timeout"
    with pytest.raises(IllegalTransition):
        worker.reserve("c", SMALL, 1, [], T0 + H, T0 + 2 * H, CTX)
    assert worker.release("a", CTX) is True  # processors release as they re-place


def test_events_round_trip_through_json_and_rebuild_the_same_worker() -> None:
    worker = new_worker()
    for step in PATHS[W.RUNNING]:
        step(worker, CTX)
    worker.reserve("a", SMALL, 2, ["serial_1"], T0, T0 + H, CTX)
    worker.reserve("b", SMALL, 2, ["serial_1"], T0, T0 + 2 * H, CTX)
    worker.extend_reservation("a", T0 + 3 * H, CTX)
    worker.release("b", CTX)
    worker.start_draining("idle", CTX)
    worker.stop("drain_timeout", CTX, force=True)
    worker.mark_stopped(CTX)
    worker.request_restart(CTX)
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    mapper = Mapper(transcoder=transcoder)
    events = worker.collect_events()
    rebuilt = None
    for event in events:
        rebuilt = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(rebuilt)
    assert rebuilt == worker and rebuilt.ledger.reservations() == worker.ledger.reservations()
    assert {e.event_name for e in events} >= {"WorkerRequested", "CapacityReserved", "ReservationExtended",
                                               "CapacityReleased", "WorkerStopping", "WorkerRestartRequested"}


def test_the_docs_catalogue_lists_every_event_with_its_payload() -> None:
    import dataclasses
    from pathlib import Path

    from domain.base import DomainEvent
    from domain.cloud_reconciliation import CloudReconciliation
    from domain.definition import LabletDefinition
    from domain.instance import LabletInstance
    from domain.lab_class import LabClass
    from domain.lab_reconciliation import LabReconciliation
    from domain.quota import QuotaPolicy, QuotaUsage
    from domain.scaling_decision import ScalingDecision
    from domain.worker_template import WorkerTemplate

    rows = {}
    for line in (Path(__file__).resolve().parents[2] / "docs" / "domain.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 6 and cells[2].startswith("`"):
            rows[(cells[1], cells[2].strip("`"))] = cells[4]
    skip = {"originator_id", "originator_version", "timestamp", "metadata", "originator_topic"}
    for aggregate in (WorkerTemplate, LabletDefinition, LabletInstance, Worker, ScalingDecision, CloudReconciliation,
                      LabClass, QuotaPolicy, QuotaUsage, LabReconciliation):
        for name, value in vars(aggregate).items():
            if isinstance(value, type) and issubclass(value, DomainEvent) and name not in {"Event", "Created"}:
                assert (aggregate.__name__, name) in rows, f"{name} missing from docs/domain.md"
                for field in dataclasses.fields(value):
                    if field.name not in skip:
                        assert field.name in rows[(aggregate.__name__, name)], f"{name}.{field.name} undocumented"


def test_caller_chosen_worker_ids_keep_the_category_prefix() -> None:
    assert Worker.request(TEMPLATE, CTX, worker_id="Worker-abc").id == "Worker-abc"
    with pytest.raises(InvalidInput):
        Worker.request(TEMPLATE, CTX, worker_id="abc")
