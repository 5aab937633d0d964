"""Random add/remove/extend sequences against a brute-force oracle.

The oracle knows nothing of sorting or sweeps: it sums every reservation active at
every start/end point, which is where usage can change.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.errors import Conflict, InsufficientCapacity
from domain.ledger import Reservation, ReservationLedger
from domain.resources import FIELDS, Resources

T0 = datetime(2026, 5, 4, tzinfo=timezone.utc)
SLOT = timedelta(minutes=15)

halves = st.integers(0, 12).map(lambda n: n / 2)  # exact in binary: the oracle needs no tolerance
resources = st.builds(Resources, halves, halves, halves)
slots = st.integers(0, 24)


def instant(slot: int) -> datetime:
    return T0 + slot * SLOT


def window() -> st.SearchStrategy[tuple[datetime, datetime]]:
    return st.tuples(slots, st.integers(1, 10)).map(lambda p: (instant(p[0]), instant(p[0] + p[1])))


def brute_usage(reservations: list[Reservation], t: datetime) -> tuple[list[float], int]:
    active = [r for r in reservations if r.hold_start <= t < r.hold_end]
    return [sum(getattr(r.resources, f) for r in active) for f in FIELDS], sum(r.nodes for r in active)


def breakpoints(reservations: list[Reservation], start: datetime, end: datetime) -> list[datetime]:
    points = {start} | {p for r in reservations for p in (r.hold_start, r.hold_end) if start < p < end}
    return sorted(points)


def brute_failures(ledger: ReservationLedger, reservations: list[Reservation], need: Resources, nodes: int,
                   port_count: int, start: datetime, end: datetime) -> set[str]:
    """Names of the limits the request would break somewhere in [start, end)."""
    failures = set()
    for t in breakpoints(reservations, start, end):
        used, used_nodes = brute_usage(reservations, t)
        for name, value in zip(FIELDS, used):
            if value + getattr(need, name) > getattr(ledger.capacity, name):
                failures.add(name)
        if used_nodes + nodes > ledger.max_nodes:
            failures.add("nodes")
    low, high = ledger.port_range
    held = {p for r in reservations if r.overlaps(start, end) for p in r.ports.values() if low <= p <= high}
    if port_count > high - low + 1 - len(held):
        failures.add("ports")
    return failures


def brute_clash(reservations: list[Reservation], candidate: Reservation) -> bool:
    wanted = set(candidate.ports.values())
    return any(
        r.instance_id != candidate.instance_id
        and r.overlaps(candidate.hold_start, candidate.hold_end)
        and wanted & set(r.ports.values())
        for r in reservations
    )


def reason_names(reasons: list[str]) -> set[str]:
    return {reason.split(":", 1)[0] for reason in reasons}


class LedgerMachine(RuleBasedStateMachine):
    @initialize(capacity=resources, max_nodes=st.integers(0, 6), low=st.integers(2000, 2010), size=st.integers(1, 5))
    def create(self, capacity: Resources, max_nodes: int, low: int, size: int) -> None:
        self.ledger = ReservationLedger(capacity, max_nodes, (low, low + size - 1))
        self.model: dict[str, Reservation] = {}
        self.counter = 0

    def _new_id(self) -> str:
        self.counter += 1
        return f"i{self.counter}"

    @rule(need=resources, nodes=st.integers(0, 4), port_count=st.integers(0, 3), span=window())
    def check_agrees_with_oracle(self, need: Resources, nodes: int, port_count: int, span: tuple) -> None:
        reasons = self.ledger.check(need, nodes, port_count, *span)
        expected = brute_failures(self.ledger, list(self.model.values()), need, nodes, port_count, *span)
        assert reason_names(reasons) == expected, (reasons, expected)

    @rule(need=resources, nodes=st.integers(0, 4), port_count=st.integers(0, 3), span=window())
    def book(self, need: Resources, nodes: int, port_count: int, span: tuple) -> None:
        """What a scheduler does: check, allocate the lowest free ports, add."""
        start, end = span
        expected = brute_failures(self.ledger, list(self.model.values()), need, nodes, port_count, start, end)
        names = [f"port_{k}" for k in range(port_count)]
        try:
            ports = self.ledger.allocate_ports(names, start, end)
        except InsufficientCapacity:
            assert "ports" in expected
            return
        assert "ports" not in expected
        assert sorted(ports.values()) == sorted(ports.values())[:port_count]
        reservation = Reservation(self._new_id(), need, nodes, ports, start, end)
        try:
            self.ledger.add(reservation)
        except InsufficientCapacity:
            assert expected, "refused although the oracle says it fits"
            return
        assert not expected, f"accepted although the oracle says {expected}"
        self.model[reservation.instance_id] = reservation

    @rule(need=resources, nodes=st.integers(0, 4), offsets=st.sets(st.integers(0, 4), max_size=3), span=window())
    def book_explicit_ports(self, need: Resources, nodes: int, offsets: set[int], span: tuple) -> None:
        """A replayed or hand-made reservation: ports chosen outside the allocator."""
        low, high = self.ledger.port_range
        ports = {f"p{o}": low + o for o in sorted(offsets) if low + o <= high}
        reservation = Reservation(self._new_id(), need, nodes, ports, *span)
        reservations = list(self.model.values())
        clash = brute_clash(reservations, reservation)
        failures = brute_failures(self.ledger, reservations, need, nodes, 0, *span)
        try:
            self.ledger.add(reservation)
        except Conflict as error:
            if isinstance(error, InsufficientCapacity):
                assert failures and not clash
            else:
                assert clash
            return
        assert not clash and not failures
        self.model[reservation.instance_id] = reservation

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        instance_id = data.draw(st.sampled_from(sorted(self.model)))
        assert self.ledger.remove(instance_id) == self.model.pop(instance_id)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), length=st.integers(1, 16))
    def extend(self, data: st.DataObject, length: int) -> None:
        instance_id = data.draw(st.sampled_from(sorted(self.model)))
        current = self.model[instance_id]
        new_end = current.hold_start + length * SLOT
        others = [r for r in self.model.values() if r.instance_id != instance_id]
        candidate = Reservation(instance_id, current.resources, current.nodes, current.ports, current.hold_start, new_end)
        fits = not brute_failures(self.ledger, others, current.resources, current.nodes, 0, current.hold_start, new_end)
        fits = fits and not brute_clash(others, candidate)
        try:
            extended = self.ledger.extend(instance_id, new_end)
        except InsufficientCapacity:
            assert not fits and new_end > current.hold_end
            return
        assert fits or new_end <= current.hold_end
        assert extended == candidate
        self.model[instance_id] = extended

    @invariant()
    def never_overbooked_at_any_instant(self) -> None:
        reservations = list(self.model.values())
        for r in reservations:
            for t in (r.hold_start, r.hold_end - timedelta(microseconds=1)):
                used, nodes = brute_usage(reservations, t)
                for name, value in zip(FIELDS, used):
                    assert value <= getattr(self.ledger.capacity, name)
                assert nodes <= self.ledger.max_nodes

    @invariant()
    def no_port_given_twice_at_once(self) -> None:
        reservations = list(self.model.values())
        for i, a in enumerate(reservations):
            for b in reservations[i + 1:]:
                if a.overlaps(b.hold_start, b.hold_end):
                    assert not set(a.ports.values()) & set(b.ports.values())

    @invariant()
    def queries_agree_with_the_model(self) -> None:
        reservations = list(self.model.values())
        assert len(self.ledger) == len(reservations)
        assert {r.instance_id: r for r in self.ledger.reservations()} == self.model
        for t in breakpoints(reservations, instant(0), instant(60)):
            used, nodes = brute_usage(reservations, t)
            assert self.ledger.usage_at(t) == (Resources(*used), nodes)
            assert {r.instance_id for r in self.ledger.active_at(t)} == {
                r.instance_id for r in reservations if r.is_active_at(t)
            }
        start, end = instant(0), instant(60)
        points = breakpoints(reservations, start, end)
        peak, peak_nodes = self.ledger.peak(start, end)
        for k, name in enumerate(FIELDS):
            assert getattr(peak, name) == max(brute_usage(reservations, t)[0][k] for t in points)
        assert peak_nodes == max(brute_usage(reservations, t)[1] for t in points)
        assert self.ledger.last_hold_end() == max((r.hold_end for r in reservations), default=None)


LedgerMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLedgerAgainstOracle = LedgerMachine.TestCase
