"""Table-driven cases for the reservation ledger (times in hours after T0)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from domain.errors import Conflict, InsufficientCapacity, InvalidInput, NotFound
from domain.ledger import Reservation, ReservationLedger
from domain.resources import ZERO, Resources

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
CAPACITY = Resources(48, 256, 1000)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def booking(instance_id: str, cpu: float, start: float, end: float, *, nodes: int = 1, ports: dict | None = None,
            memory: float = 0, storage: float = 0) -> Reservation:
    return Reservation(instance_id, Resources(cpu, memory, storage), nodes, ports or {}, at(start), at(end))


def ledger_with(*reservations: Reservation, max_nodes: int = 20, port_range: tuple[int, int] = (2000, 2009)) -> ReservationLedger:
    ledger = ReservationLedger(CAPACITY, max_nodes, port_range)
    for reservation in reservations:
        ledger.add(reservation)
    return ledger


# (case, existing, request (cpu, nodes, ports, start, end), expected reason prefixes)
CHECK_CASES = [
    ("empty ledger fits", [], (48, 20, 10, 0, 4), []),
    ("alone too big", [], (49, 1, 0, 0, 4), ["cpu_cores: 49 needed"]),
    ("overlap exceeds cpu", [booking("a", 30, 0, 4)], (20, 1, 0, 2, 6), ["cpu_cores: 50 needed at peak " + at(2).isoformat()]),
    ("exact fit at overlap", [booking("a", 30, 0, 4)], (18, 1, 0, 2, 6), []),
    ("back-to-back after", [booking("a", 48, 0, 4)], (48, 1, 0, 4, 8), []),
    ("back-to-back before", [booking("a", 48, 4, 8)], (48, 1, 0, 0, 4), []),
    ("one minute of overlap is enough to clash", [booking("a", 48, 0, 4)], (1, 1, 0, 4 - 1 / 60, 8), ["cpu_cores"]),
    (
        "peak strictly inside the window",
        [booking("a", 20, 0, 10), booking("b", 20, 3, 5), booking("c", 5, 6, 7)],
        (9, 1, 0, 1, 9),
        ["cpu_cores: 49 needed at peak " + at(3).isoformat()],
    ),
    (
        "sequential neighbours never add up",
        [booking("a", 40, 0, 2), booking("b", 40, 2, 4), booking("c", 40, 4, 6)],
        (8, 1, 0, 0, 6),
        [],
    ),
    ("reservation fully containing the window", [booking("a", 40, 0, 100)], (9, 1, 0, 50, 51), ["cpu_cores"]),
    ("nodes limit", [booking("a", 1, 0, 4, nodes=15)], (1, 6, 0, 2, 3), ["nodes: 21 needed at peak " + at(2).isoformat() + ", max_nodes 20"]),
    ("nodes limit exactly reached", [booking("a", 1, 0, 4, nodes=15)], (1, 5, 0, 2, 3), []),
    (
        "port exhaustion",
        [booking("a", 1, 0, 4, ports={f"p{i}": 2000 + i for i in range(8)})],
        (1, 1, 3, 2, 3),
        ["ports: 3 needed, 2 free in 2000-2009"],
    ),
    (
        "ports come back after the hold ends",
        [booking("a", 1, 0, 4, ports={f"p{i}": 2000 + i for i in range(10)})],
        (1, 1, 10, 4, 5),
        [],
    ),
    (
        "several reasons at once",
        [booking("a", 40, 0, 4, nodes=19, memory=250)],
        (Resources(10, 8, 0), 2, 0, 1, 2),
        ["cpu_cores", "memory_gb", "nodes"],
    ),
]


@pytest.mark.parametrize(("case", "existing", "request_", "expected"), CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check(case: str, existing: list[Reservation], request_: tuple, expected: list[str]) -> None:
    need, nodes, ports, start, end = request_
    resources = need if isinstance(need, Resources) else Resources(need, 0, 0)
    reasons = ledger_with(*existing).check(resources, nodes, ports, at(start), at(end))
    assert len(reasons) == len(expected), reasons
    for reason, prefix in zip(reasons, expected):
        assert reason.startswith(prefix), reason


def test_reason_names_capacity() -> None:
    [reason] = ledger_with(booking("a", 30, 0, 4)).check(Resources(20, 0, 0), 1, 0, at(2), at(6))
    assert reason == f"cpu_cores: 50 needed at peak {at(2).isoformat()}, capacity 48"


# (case, existing, names, window, expected allocation)
PORT_CASES = [
    ("lowest first", [], ["serial_1", "serial_2", "vnc_1"], (0, 4), {"serial_1": 2000, "serial_2": 2001, "vnc_1": 2002}),
    ("skips held ports", [booking("a", 1, 0, 4, ports={"x": 2000, "y": 2002})], ["s", "t"], (1, 2), {"s": 2001, "t": 2003}),
    ("reuses ports of a finished hold", [booking("a", 1, 0, 4, ports={"x": 2000})], ["s"], (4, 6), {"s": 2000}),
    ("reuses ports of a later hold back-to-back", [booking("a", 1, 4, 8, ports={"x": 2000})], ["s"], (0, 4), {"s": 2000}),
    ("avoids ports of any overlapping hold", [booking("a", 1, 0, 2, ports={"x": 2000}), booking("b", 1, 3, 5, ports={"y": 2001})], ["s"], (1, 4), {"s": 2002}),
    ("no names no ports", [], [], (0, 1), {}),
]


@pytest.mark.parametrize(("case", "existing", "names", "window", "expected"), PORT_CASES, ids=[c[0] for c in PORT_CASES])
def test_allocate_ports(case: str, existing: list[Reservation], names: list[str], window: tuple, expected: dict) -> None:
    ledger = ledger_with(*existing)
    allocation = ledger.allocate_ports(names, at(window[0]), at(window[1]))
    assert allocation == expected
    assert list(allocation) == names  # the order of the names is kept
    assert ledger.allocate_ports(names, at(window[0]), at(window[1])) == allocation  # deterministic, nothing held


def test_allocate_ports_raises_when_the_range_is_exhausted() -> None:
    ledger = ledger_with(booking("a", 1, 0, 4, ports={f"p{i}": 2000 + i for i in range(9)}))
    assert ledger.allocate_ports(["last"], at(1), at(2)) == {"last": 2009}
    with pytest.raises(InsufficientCapacity, match="2 needed, 1 free in 2000-2009"):
        ledger.allocate_ports(["one", "two"], at(1), at(2))


def test_allocate_ports_rejects_duplicate_names() -> None:
    with pytest.raises(InvalidInput):
        ledger_with().allocate_ports(["a", "a"], at(0), at(1))


def test_free_port_count() -> None:
    ledger = ledger_with(booking("a", 1, 0, 4, ports={"x": 2000, "y": 2005}), booking("b", 1, 4, 6, ports={"z": 2001}))
    assert ledger.free_port_count(at(0), at(4)) == 8
    assert ledger.free_port_count(at(3), at(5)) == 7
    assert ledger.free_port_count(at(6), at(7)) == 10


def test_add_then_get_remove() -> None:
    ledger = ledger_with()
    r = booking("a", 8, 0, 4, ports={"serial_1": 2000})
    ledger.add(r)
    assert len(ledger) == 1
    assert ledger.get("a") == r
    assert ledger.remove("a") == r
    assert ledger.get("a") is None
    assert len(ledger) == 0
    with pytest.raises(NotFound):
        ledger.remove("a")


def test_add_rejects_a_duplicate_instance() -> None:
    ledger = ledger_with(booking("a", 1, 0, 4))
    with pytest.raises(Conflict):
        ledger.add(booking("a", 1, 10, 14))


def test_add_rejects_a_port_held_by_an_overlapping_reservation() -> None:
    ledger = ledger_with(booking("a", 1, 0, 4, ports={"x": 2003}))
    with pytest.raises(Conflict, match="2003"):
        ledger.add(booking("b", 1, 3, 5, ports={"y": 2003}))
    ledger.add(booking("c", 1, 4, 5, ports={"y": 2003}))  # back-to-back may reuse it


def test_add_rejects_a_port_outside_the_range() -> None:
    with pytest.raises(InvalidInput):
        ledger_with().add(booking("a", 1, 0, 4, ports={"x": 1999}))


def test_add_rechecks_capacity_and_lists_reasons() -> None:
    ledger = ledger_with(booking("a", 40, 0, 4))
    with pytest.raises(InsufficientCapacity) as caught:
        ledger.add(booking("b", 10, 2, 6))
    assert caught.value.reasons == [f"cpu_cores: 50 needed at peak {at(2).isoformat()}, capacity 48"]
    assert ledger.get("b") is None


def test_add_without_verification_is_for_replay_only() -> None:
    ledger = ledger_with(booking("a", 40, 0, 4))
    ledger.add(booking("b", 10, 2, 6), verify=False)
    assert len(ledger) == 2


# (case, existing, instance to extend, new end (hours), error or None)
EXTEND_CASES = [
    ("into free time", [booking("a", 30, 0, 4), booking("b", 30, 6, 8)], "a", 6, None),
    ("into a busy neighbour", [booking("a", 30, 0, 4), booking("b", 30, 6, 8)], "a", 7, InsufficientCapacity),
    ("shortening always fits", [booking("a", 30, 0, 4), booking("b", 30, 4, 8)], "a", 2, None),
    ("ports must stay free", [booking("a", 1, 0, 4, ports={"x": 2000}), booking("b", 1, 5, 8, ports={"y": 2000})], "a", 6, InsufficientCapacity),
    ("ports of a back-to-back neighbour", [booking("a", 1, 0, 4, ports={"x": 2000}), booking("b", 1, 5, 8, ports={"y": 2000})], "a", 5, None),
    ("nodes over the tail", [booking("a", 1, 0, 4, nodes=10), booking("b", 1, 5, 8, nodes=11)], "a", 6, InsufficientCapacity),
    ("end before start", [booking("a", 1, 2, 4)], "a", 2, InvalidInput),
    ("unknown instance", [], "a", 5, NotFound),
]


@pytest.mark.parametrize(("case", "existing", "instance_id", "new_end", "error"), EXTEND_CASES, ids=[c[0] for c in EXTEND_CASES])
def test_extend(case: str, existing: list[Reservation], instance_id: str, new_end: float, error: type | None) -> None:
    ledger = ledger_with(*existing)
    before = ledger.copy()
    if error is None:
        extended = ledger.extend(instance_id, at(new_end))
        assert extended.hold_end == at(new_end)
        assert ledger.get(instance_id) == extended
    else:
        with pytest.raises(error):
            ledger.extend(instance_id, at(new_end))
        assert ledger == before  # a refused extension changes nothing


def test_peak_usage_and_activity() -> None:
    ledger = ledger_with(
        booking("a", 10, 0, 4, nodes=2, memory=32),
        booking("b", 20, 2, 6, nodes=5, memory=16),
        booking("c", 5, 6, 8, nodes=1),
    )
    assert ledger.peak(at(0), at(8)) == (Resources(30, 48, 0), 7)
    assert ledger.peak(at(4), at(8)) == (Resources(20, 16, 0), 5)
    assert ledger.peak(at(8), at(9)) == (ZERO, 0)
    assert ledger.usage_at(at(2)) == (Resources(30, 48, 0), 7)
    assert ledger.usage_at(at(6)) == (Resources(5, 0, 0), 1)
    assert [r.instance_id for r in ledger.active_at(at(3))] == ["a", "b"]
    assert [r.instance_id for r in ledger.active_at(at(4))] == ["b"]
    assert ledger.active_at(at(8)) == []
    assert ledger.last_hold_end() == at(8)
    assert ledger_with().last_hold_end() is None


def test_long_hold_is_found_after_shorter_ones_are_removed() -> None:
    # The longest-hold bound must be kept right when reservations come and go.
    ledger = ledger_with(booking("long", 40, 0, 100), booking("short", 1, 50, 51))
    ledger.remove("short")
    assert ledger.check(Resources(9, 0, 0), 1, 0, at(90), at(91)) != []
    ledger.remove("long")
    ledger.add(booking("short2", 1, 0, 1))
    assert ledger.check(Resources(48, 0, 0), 1, 0, at(90), at(91)) == []


def test_reservations_are_sorted_by_start() -> None:
    ledger = ledger_with(booking("c", 1, 5, 6), booking("a", 1, 0, 1), booking("b", 1, 0, 2))
    assert [r.instance_id for r in ledger.reservations()] == ["a", "b", "c"]


def test_equality_and_serialisation_for_replay() -> None:
    first = ledger_with(booking("a", 1, 0, 4, ports={"x": 2000}), booking("b", 2, 1, 3))
    second = ledger_with(booking("b", 2, 1, 3), booking("a", 1, 0, 4, ports={"x": 2000}))
    assert first == second
    assert ReservationLedger.from_dict(first.to_dict()) == first
    second.remove("b")
    assert first != second


def test_reservation_round_trips_through_a_dict() -> None:
    r = booking("a", 2.5, 0, 4, nodes=3, ports={"serial_1": 2000, "vnc_1": 2001}, memory=8)
    assert Reservation.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hold_end": at(0)}, "hold_end"),
        ({"hold_start": datetime(2026, 1, 1)}, "hold_start"),
        ({"nodes": -1}, "nodes"),
        ({"ports": {"a": 2000, "b": 2000}}, "ports"),
        ({"ports": {"a": 70000}}, "ports"),
        ({"instance_id": ""}, "instance_id"),
    ],
)
def test_invalid_reservations(kwargs: dict, field: str) -> None:
    values = {"instance_id": "a", "resources": ZERO, "nodes": 1, "ports": {}, "hold_start": at(0), "hold_end": at(1)}
    with pytest.raises(InvalidInput) as caught:
        Reservation(**{**values, **kwargs})
    assert caught.value.field == field


def test_reservation_keeps_its_own_copy_of_ports() -> None:
    ports = {"x": 2000}
    r = booking("a", 1, 0, 1, ports=ports)
    ports["y"] = 2001
    assert r.ports == {"x": 2000}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((Resources(1, 1, 1), -1, 0, at(0), at(1)), "nodes"),
        ((Resources(1, 1, 1), 1, -1, at(0), at(1)), "port_count"),
        ((Resources(1, 1, 1), 1, 0, at(1), at(1)), "hold_end"),
        ((Resources(1, 1, 1), 1, 0, datetime(2026, 1, 1), at(1)), "hold_start"),
    ],
)
def test_check_rejects_invalid_requests(args: tuple, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ledger_with().check(*args)
    assert caught.value.field == field


def test_a_deep_copy_is_independent_of_the_original() -> None:
    original = ledger_with(booking("a", 2, 9, 10), booking("b", 2, 11, 12))
    clone = copy.deepcopy(original)
    assert clone == original and clone is not original
    clone.remove("a")
    clone.add(booking("c", 2, 13, 14))
    assert [r.instance_id for r in original.reservations()] == ["a", "b"]
    assert [r.instance_id for r in clone.reservations()] == ["b", "c"]
    assert original.usage_at(at(9.5)) != clone.usage_at(at(9.5))
