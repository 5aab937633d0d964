"""Random worker histories (hypothesis): reserve/release/extend mixed with drain, stop, restart and
terminate on random templates. Invariants: never overbooked at any instant, never one port in two
overlapping reservations, every acceptance and refusal matches a brute-force oracle, and the
worker rebuilt from its stored events equals the live one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InsufficientCapacity, NotFound
from domain.ledger import Reservation, ReservationLedger
from domain.resources import TOLERANCE, Resources
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplateSpec

W = WorkerState
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
SLOT = timedelta(minutes=30)
INSTANCE_IDS = [f"LabletInstance-{n}" for n in range(6)]
FIELDS = ("cpu_cores", "memory_gb", "storage_gb")

SPEC_TABLE = {
    W.PENDING: {W.PROVISIONING, W.FAILED, W.TERMINATED},
    W.PROVISIONING: {W.RUNNING, W.FAILED, W.TERMINATED},
    W.RUNNING: {W.DRAINING, W.STOPPING, W.TERMINATED},
    W.DRAINING: {W.RUNNING, W.STOPPING, W.TERMINATED},
    W.STOPPING: {W.STOPPED, W.TERMINATED},
    W.STOPPED: {W.PROVISIONING, W.TERMINATED},
    W.FAILED: {W.TERMINATED},
    W.TERMINATED: set(),
}
RESERVABLE = {W.PENDING, W.PROVISIONING, W.RUNNING, W.STOPPED}
EXTENDABLE = RESERVABLE | {W.DRAINING}


# -- brute-force oracles (independent of the ledger's bisect/sweep) ------------------------------------

def instants(reservations: list[Reservation]) -> list[datetime]:
    """Usage is constant between starts, so checking at every start covers every instant."""
    return sorted({r.hold_start for r in reservations})


def overbooking(reservations: list[Reservation], capacity: Resources, max_nodes: int) -> list[str]:
    problems = []
    for t in instants(reservations):
        active = [r for r in reservations if r.hold_start <= t < r.hold_end]
        for name in FIELDS:
            used = sum(getattr(r.resources, name) for r in active)
            if used > getattr(capacity, name) + TOLERANCE:
                problems.append(f"{name} {used} > {getattr(capacity, name)} at {t}")
        nodes = sum(r.nodes for r in active)
        if nodes > max_nodes:
            problems.append(f"nodes {nodes} > {max_nodes} at {t}")
    return problems


def port_clashes(reservations: list[Reservation], port_range: tuple[int, int] | None = None) -> list[str]:
    problems = []
    for i, a in enumerate(reservations):
        if port_range and any(not port_range[0] <= p <= port_range[1] for p in a.ports.values()):
            problems.append(f"{a.instance_id} holds a port outside {port_range}: {a.ports}")
        for b in reservations[i + 1:]:
            if a.hold_start < b.hold_end and b.hold_start < a.hold_end:
                shared = set(a.ports.values()) & set(b.ports.values())
                if shared:
                    problems.append(f"{a.instance_id} and {b.instance_id} share {sorted(shared)}")
    return problems


def oracle_fit(ledger: ReservationLedger, candidate: Reservation, port_count: int) -> tuple[bool, list[int]]:
    """Would ``candidate`` fit, and which ports would lowest-free-first give it?"""
    others = [r for r in ledger.reservations() if r.instance_id != candidate.instance_id]
    fits = not overbooking_within(others, candidate, ledger)
    low, high = ledger.port_range
    used = {p for r in others if r.hold_start < candidate.hold_end and candidate.hold_start < r.hold_end
            for p in r.ports.values()}
    free = [p for p in range(low, high + 1) if p not in used]
    return fits and len(free) >= port_count, free[:port_count]


def overbooking_within(others: list[Reservation], candidate: Reservation, ledger: ReservationLedger) -> list[str]:
    """What adding ``candidate`` would overbook, checked at every start inside its window."""
    window = [r for r in others if r.hold_start < candidate.hold_end and candidate.hold_start < r.hold_end]
    points = {candidate.hold_start} | {r.hold_start for r in window if r.hold_start > candidate.hold_start}
    problems = []
    for t in sorted(points):
        active = [r for r in [*window, candidate] if r.hold_start <= t < r.hold_end]
        for name in FIELDS:
            if sum(getattr(r.resources, name) for r in active) > getattr(ledger.capacity, name) + TOLERANCE:
                problems.append(name)
        if sum(r.nodes for r in active) > ledger.max_nodes:
            problems.append("nodes")
    return problems


def mapper() -> Mapper[str]:
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)


def rebuild(events: list[Any]) -> Any:
    m = mapper()
    aggregate = None
    for event in events:
        aggregate = m.to_domain_event(m.to_stored_event(event)).mutate(aggregate)
    return aggregate


templates = st.builds(
    lambda cpu, mem, sto, licence, nodes, ports, drain: WorkerTemplateSpec.from_dict({
        "name": "random", "instance_type": "m5zn.metal", "region": "us-east-1", "ami_pattern": "CML-*",
        "capacity": {"cpu_cores": cpu, "memory_gb": mem, "storage_gb": sto}, "license_type": licence,
        "max_nodes": nodes, "port_range": {"start": 2000, "end": 2000 + ports}, "hourly_cost": 1.0,
        "drain_timeout_hours": drain,
    }),
    cpu=st.sampled_from([2, 4, 8]), mem=st.sampled_from([4, 8, 16]), sto=st.sampled_from([20, 50]),
    licence=st.sampled_from(["PERSONAL", "ENTERPRISE"]), nodes=st.integers(1, 12), ports=st.integers(1, 5),
    drain=st.sampled_from([1, 4]),
)


class WorkerHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.at = T0
        self.history: list[Any] = []
        self.worker: Worker

    @initialize(template=templates)
    def requested(self, template: WorkerTemplateSpec) -> None:
        self.worker = Worker.request(template, self.ctx())
        self.collect()

    def ctx(self) -> CommandContext:
        return CommandContext(at=self.at, actor="machine")

    def collect(self) -> list[Any]:
        events = list(self.worker.collect_events())
        self.history.extend(events)
        return events

    @rule(slots=st.integers(0, 3))
    def time_passes(self, slots: int) -> None:
        self.at += slots * SLOT

    @rule(
        instance_id=st.sampled_from(INSTANCE_IDS),
        cpu=st.sampled_from([0.5, 1, 2, 3]), mem=st.sampled_from([1, 2, 4, 6]), sto=st.sampled_from([5, 10, 20]),
        nodes=st.integers(0, 6), port_count=st.integers(0, 3), start=st.integers(0, 12), length=st.integers(1, 6),
    )
    def reserve(self, instance_id: str, cpu: float, mem: float, sto: float, nodes: int, port_count: int,
                start: int, length: int) -> None:
        w = self.worker
        resources = Resources(cpu, mem, sto)
        names = [f"p{k}" for k in range(port_count)]
        hold_start, hold_end = self.at + start * SLOT, self.at + (start + length) * SLOT
        existing = w.ledger.get(instance_id)
        call = lambda: w.reserve(instance_id, resources, nodes, names, hold_start, hold_end, self.ctx())  # noqa: E731
        if existing is not None:
            same = (existing.hold_start, existing.hold_end, existing.resources, existing.nodes,
                    sorted(existing.ports)) == (hold_start, hold_end, resources, nodes, sorted(names))
            if same:
                assert call() == existing.ports and self.collect() == []
            else:
                with pytest.raises(Conflict):
                    call()
                assert self.collect() == []
            return
        if w.state not in RESERVABLE:
            with pytest.raises(IllegalTransition):
                call()
            assert self.collect() == []
            return
        candidate = Reservation(instance_id, resources, nodes, {}, hold_start, hold_end)
        fits, expected_ports = oracle_fit(w.ledger, candidate, port_count)
        if fits:
            ports = call()
            assert sorted(ports.values()) == expected_ports  # lowest free first
            assert [e.event_name for e in self.collect()] == ["CapacityReserved"]
            assert w.ledger.get(instance_id) is not None
        else:
            with pytest.raises(InsufficientCapacity):
                call()
            assert self.collect() == [] and w.ledger.get(instance_id) is None

    @rule(instance_id=st.sampled_from(INSTANCE_IDS))
    def release(self, instance_id: str) -> None:
        held = self.worker.ledger.get(instance_id) is not None
        assert self.worker.release(instance_id, self.ctx()) is held
        assert len(self.collect()) == (1 if held else 0)
        assert self.worker.ledger.get(instance_id) is None

    @rule(instance_id=st.sampled_from(INSTANCE_IDS), slots=st.integers(-1, 4))
    def extend(self, instance_id: str, slots: int) -> None:
        w = self.worker
        current = w.ledger.get(instance_id)
        if w.state not in EXTENDABLE:
            with pytest.raises(IllegalTransition):
                w.extend_reservation(instance_id, self.at, self.ctx())
            return
        if current is None:
            with pytest.raises(NotFound):
                w.extend_reservation(instance_id, self.at + SLOT, self.ctx())
            return
        new_end = current.hold_end + slots * SLOT
        if new_end <= current.hold_end:
            assert w.extend_reservation(instance_id, new_end, self.ctx()) == current and self.collect() == []
            return
        tail = Reservation(instance_id, current.resources, current.nodes, dict(current.ports), current.hold_end,
                           new_end)
        others = [r for r in w.ledger.reservations() if r.instance_id != instance_id]
        fits = not overbooking_within(others, tail, w.ledger) and not port_clashes([*others, tail])
        if fits:
            assert w.extend_reservation(instance_id, new_end, self.ctx()).hold_end == new_end
            assert [e.event_name for e in self.collect()] == ["ReservationExtended"]
        else:
            with pytest.raises(InsufficientCapacity):
                w.extend_reservation(instance_id, new_end, self.ctx())
            assert self.collect() == [] and w.ledger.get(instance_id) == current

    def commands(self, force: bool) -> dict[str, tuple[WorkerState, set[WorkerState], Any]]:
        """Every lifecycle command: (state it leads to, states it is legal from, action)."""
        w = self.worker
        return {
            "start_provisioning": (W.PROVISIONING, {W.PENDING}, lambda c: w.start_provisioning(f"i-{w.version}", c)),
            "mark_ready": (W.RUNNING, {W.PROVISIONING}, lambda c: w.mark_ready(f"10.0.0.{w.version}", c)),
            "provisioning_failed": (W.FAILED, {W.PENDING, W.PROVISIONING}, lambda c: w.provisioning_failed("x", c)),
            "start_draining": (W.DRAINING, {W.RUNNING}, lambda c: w.start_draining("idle", c)),
            "cancel_drain": (W.RUNNING, {W.DRAINING}, lambda c: w.cancel_drain(c)),
            "stop": (W.STOPPING, {W.RUNNING, W.DRAINING}, lambda c: w.stop("idle", c, force=force)),
            "mark_stopped": (W.STOPPED, {W.STOPPING}, lambda c: w.mark_stopped(c)),
            "request_restart": (W.PROVISIONING, {W.STOPPED}, lambda c: w.request_restart(c)),
            "terminate": (W.TERMINATED, set(W) - {W.TERMINATED},
                          lambda c: w.terminate("drain_timeout", c, force=force)),
        }

    def run_lifecycle(self, command: str, force: bool) -> None:
        w, before = self.worker, self.worker.state
        target, sources, action = self.commands(force)[command]
        if before not in sources:
            with pytest.raises(IllegalTransition):
                action(self.ctx())
            assert self.collect() == [] and w.state is before
            return
        interrupts = command in {"stop", "terminate"} and w.active_instance_ids(self.at)
        if interrupts and not force:
            with pytest.raises(Conflict):
                action(self.ctx())
            assert self.collect() == [] and w.state is before
            return
        action(self.ctx())
        assert self.collect() and w.state is target and target in SPEC_TABLE[before]

    # The common path (no failure, no termination) is drawn among the legal commands so that
    # histories reach RUNNING/DRAINING/STOPPED with reservations; failures and terminations
    # are rare, refused commands have their own rule.
    @rule(data=st.data(), force=st.booleans())
    def a_legal_lifecycle_step(self, data: st.DataObject, force: bool) -> None:
        legal = sorted(name for name, (_, sources, _) in self.commands(force).items()
                       if self.worker.state in sources and name not in {"terminate", "provisioning_failed"})
        if legal:
            self.run_lifecycle(data.draw(st.sampled_from(legal), label="command"), force)

    @rule(data=st.data())
    def a_refused_lifecycle_step(self, data: st.DataObject) -> None:
        illegal = sorted(name for name, (_, sources, _) in self.commands(False).items()
                         if self.worker.state not in sources)
        if illegal:
            self.run_lifecycle(data.draw(st.sampled_from(illegal), label="command"), False)

    @rule(command=st.sampled_from(["terminate", "provisioning_failed"]), force=st.booleans(), dice=st.integers(0, 9))
    def a_rare_ending(self, command: str, force: bool, dice: int) -> None:
        if dice == 0:
            self.run_lifecycle(command, force)

    @rule()
    def repeated_reports_record_nothing(self) -> None:
        w = self.worker
        if w.state is W.PROVISIONING and w.cloud_instance_id:
            w.start_provisioning(w.cloud_instance_id, self.ctx())
        if w.state is W.RUNNING and w.ip:
            w.mark_ready(w.ip, self.ctx())
        assert self.collect() == []

    @invariant()
    def never_overbooked_at_any_instant(self) -> None:
        ledger = self.worker.ledger
        assert overbooking(ledger.reservations(), ledger.capacity, ledger.max_nodes) == []
        assert ledger.max_nodes <= self.worker.template.node_limit

    @invariant()
    def no_port_in_two_overlapping_reservations(self) -> None:
        assert port_clashes(self.worker.ledger.reservations(), self.worker.template.port_range.as_tuple()) == []

    @invariant()
    def rebuilt_from_its_events_equals_the_live_object(self) -> None:
        rebuilt = rebuild(self.history)
        assert rebuilt == self.worker
        assert rebuilt.ledger.reservations() == self.worker.ledger.reservations()

    @invariant()
    def terminated_workers_hold_nothing(self) -> None:
        if self.worker.state is W.TERMINATED:
            assert len(self.worker.ledger) == 0


WorkerHistory.TestCase.settings = settings(
    max_examples=120, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestWorkerHistory = WorkerHistory.TestCase


# -- the invariants can fail ---------------------------------------------------------------------------

def reservation(instance_id: str, cpu: float, nodes: int, ports: dict[str, int], start: int, end: int) -> Reservation:
    return Reservation(instance_id, Resources(cpu, 1, 1), nodes, ports, T0 + start * SLOT, T0 + end * SLOT)


def test_overbooking_oracle_detects_an_overbooked_instant() -> None:
    capacity = Resources(4, 100, 100)
    fine = [reservation("a", 3, 1, {}, 0, 2), reservation("b", 3, 1, {}, 2, 4)]  # back to back
    assert overbooking(fine, capacity, 2) == []
    broken = [reservation("a", 3, 1, {}, 0, 2), reservation("b", 3, 1, {}, 1, 4)]
    assert overbooking(broken, capacity, 2) != []
    too_many_nodes = [reservation("a", 1, 2, {}, 0, 2), reservation("b", 1, 1, {}, 1, 2)]
    assert overbooking(too_many_nodes, capacity, 2) != []


def test_port_oracle_detects_a_shared_port_and_an_out_of_range_port() -> None:
    assert port_clashes([reservation("a", 1, 0, {"s": 2000}, 0, 2), reservation("b", 1, 0, {"s": 2000}, 2, 3)]) == []
    assert port_clashes([reservation("a", 1, 0, {"s": 2000}, 0, 2), reservation("b", 1, 0, {"t": 2000}, 1, 3)])
    assert port_clashes([reservation("a", 1, 0, {"s": 2999}, 0, 2)], (2000, 2005))


def machine_with_room() -> WorkerHistory:
    machine = WorkerHistory()
    template = WorkerTemplateSpec.from_dict({
        "name": "t", "instance_type": "m5zn.metal", "region": "us-east-1", "ami_pattern": "CML-*",
        "capacity": {"cpu_cores": 4, "memory_gb": 8, "storage_gb": 50}, "license_type": "PERSONAL",
        "max_nodes": 4, "port_range": {"start": 2000, "end": 2001}, "hourly_cost": 1.0,
    })
    machine.requested(template)
    return machine


def test_the_machine_catches_a_worker_that_skips_the_capacity_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReservationLedger, "check", lambda self, *args, **kwargs: [])
    machine = machine_with_room()
    machine.reserve("a", 3, 1, 5, 1, 0, 0, 2)
    with pytest.raises(BaseException):  # noqa: PT011,B017 - the oracle's "DID NOT RAISE" or an assertion
        machine.reserve("b", 3, 1, 5, 1, 0, 0, 2)
        machine.never_overbooked_at_any_instant()


def test_the_machine_catches_a_port_given_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReservationLedger, "allocate_ports",
                        lambda self, names, s, e: {n: self.port_range[0] for n in names[:1]})
    machine = machine_with_room()
    machine.reserve("a", 1, 1, 5, 0, 1, 0, 2)
    with pytest.raises(AssertionError):
        machine.reserve("b", 1, 1, 5, 0, 1, 0, 2)
        machine.no_port_in_two_overlapping_reservations()


def test_the_rebuild_invariant_catches_state_no_event_explains() -> None:
    machine = machine_with_room()
    machine.reserve("a", 1, 1, 5, 0, 1, 0, 2)
    machine.rebuilt_from_its_events_equals_the_live_object()
    machine.worker.ledger.add(reservation("ghost", 1, 0, {}, 5, 6), verify=False)
    with pytest.raises(AssertionError):
        machine.rebuilt_from_its_events_equals_the_live_object()
