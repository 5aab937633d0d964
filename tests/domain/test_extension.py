"""``domain/extension.py``: extending a hold never overbooks, on random ledgers.

The oracle is brute force (``tests/domain/test_ledger_properties``): usage summed at every
start/end point, and no port shared by two overlapping reservations.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.extension import MINUTE, extension_fits, longest_extension, plan_room
from domain.ledger import Reservation, ReservationLedger
from domain.resources import FIELDS, Resources
from tests.domain.test_ledger_properties import brute_usage, instant

CAPACITY = Resources(8, 32, 100)


def overbooked(ledger: ReservationLedger) -> bool:
    """True if any instant is over capacity or nodes, or a port is shared by overlapping holds."""
    reservations = ledger.reservations()
    for t in {r.hold_start for r in reservations}:
        used, nodes = brute_usage(reservations, t)
        if nodes > ledger.max_nodes or any(u > getattr(CAPACITY, f) + 1e-9 for u, f in zip(used, FIELDS)):
            return True
    for a in reservations:
        for b in reservations:
            if a.instance_id < b.instance_id and a.overlaps(b.hold_start, b.hold_end) \
                    and set(a.ports.values()) & set(b.ports.values()):
                return True
    return False


@st.composite
def ledgers(draw: st.DrawFn) -> ReservationLedger:
    """A ledger filled with whatever random holds fit (the ledger refuses the others)."""
    ledger = ReservationLedger(CAPACITY, draw(st.integers(2, 8)), (2000, 2000 + draw(st.integers(2, 8))))
    first = draw(st.integers(0, 20))
    ledger.add(Reservation("i-first", Resources(1, 1, 1), 0, {}, instant(first), instant(first + 2)))
    for n in range(draw(st.integers(1, 12))):
        start = draw(st.integers(0, 20))
        length = draw(st.integers(1, 8))
        cpu = draw(st.integers(1, 4))
        nodes = draw(st.integers(0, 3))
        names = [f"p{i}" for i in range(draw(st.integers(0, 2)))]
        try:
            ports = ledger.allocate_ports(names, instant(start), instant(start + length))
            ledger.add(Reservation(f"i{n:02d}", Resources(cpu, cpu, cpu), nodes, ports,
                                   instant(start), instant(start + length)))
        except DomainError:
            continue
    return ledger


@settings(max_examples=150, deadline=None)
@given(ledger=ledgers(), pick=st.integers(0, 100), minutes=st.integers(1, 240))
def test_an_extension_that_fits_never_overbooks(ledger: ReservationLedger, pick: int, minutes: int) -> None:
    target = ledger.reservations()[pick % len(ledger)]
    new_end = target.hold_end + minutes * MINUTE
    reasons = extension_fits(ledger, target.instance_id, new_end)
    extended = ledger.copy()
    if reasons:
        try:
            extended.extend(target.instance_id, new_end)
        except DomainError:
            return
        raise AssertionError("extension_fits refused what the ledger accepts")
    extended.extend(target.instance_id, new_end)
    assert not overbooked(extended)


@settings(max_examples=150, deadline=None)
@given(ledger=ledgers(), pick=st.integers(0, 100), limit=st.integers(0, 300))
def test_the_longest_extension_fits_and_one_minute_more_does_not(
    ledger: ReservationLedger, pick: int, limit: int
) -> None:
    target = ledger.reservations()[pick % len(ledger)]
    longest = longest_extension(ledger, target.instance_id, limit)
    assert 0 <= longest <= limit
    assert not extension_fits(ledger, target.instance_id, target.hold_end + longest * MINUTE) or longest == 0
    if longest < limit:
        assert extension_fits(ledger, target.instance_id, target.hold_end + (longest + 1) * MINUTE)


@settings(max_examples=150, deadline=None)
@given(ledger=ledgers(), pick=st.integers(0, 100), minutes=st.integers(1, 240), movable_bits=st.integers(0, 4095))
def test_making_room_moves_only_movable_holds_and_then_never_overbooks(
    ledger: ReservationLedger, pick: int, minutes: int, movable_bits: int
) -> None:
    reservations = ledger.reservations()
    target = reservations[pick % len(reservations)]
    movable = {r.instance_id for i, r in enumerate(reservations) if movable_bits >> i & 1}
    new_end = target.hold_end + minutes * MINUTE
    plan = plan_room(ledger, target.instance_id, new_end, movable)
    moved = {r.instance_id for r in plan.move}
    assert moved <= movable - {target.instance_id}  # the extended lab itself never moves
    if not plan.fits:
        assert plan.reasons and not moved
        return
    after = ledger.copy()
    for instance_id in moved:
        after.remove(instance_id)
    after.extend(target.instance_id, new_end)  # the ledger's own check agrees
    assert not overbooked(after)
    # every hold moved was in the way: each overlaps the tail of the extension
    assert all(r.overlaps(target.hold_end, new_end) for r in plan.move)


def test_room_is_made_by_moving_the_future_hold_in_the_way() -> None:
    ledger = ReservationLedger(Resources(4, 16, 100), 10, (2000, 2001))
    ledger.add(Reservation("live", Resources(4, 4, 4), 1, {"a": 2000}, instant(0), instant(4)))
    ledger.add(Reservation("next", Resources(4, 4, 4), 1, {"a": 2000}, instant(4), instant(8)))
    new_end = instant(4) + timedelta(minutes=30)
    assert extension_fits(ledger, "live", new_end)
    assert longest_extension(ledger, "live", 60) == 0
    assert plan_room(ledger, "live", new_end, set()).fits is False
    plan = plan_room(ledger, "live", new_end, {"next", "live"})
    assert plan.fits and [r.instance_id for r in plan.move] == ["next"]
