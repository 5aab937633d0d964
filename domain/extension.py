"""Extending a hold on one worker's ledger: does it fit, how far could it go, what must move.

Pure functions over a ``ReservationLedger`` (no I/O, no clock: times are passed in). The
service that extends a lab (``processors/commands/extension.py``) and the overrun watcher
(``processors/overrun``) use them; the worker aggregate re-checks when it records.

Feasibility is monotone in the new end: the tail ``[old_end, new_end)`` of a shorter
extension is a subset of a longer one's, so "the longest extension possible" is found by a
binary search over whole minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import DomainError, InsufficientCapacity
from domain.ledger import Reservation, ReservationLedger

MINUTE = timedelta(minutes=1)


def extension_fits(ledger: ReservationLedger, instance_id: str, new_hold_end: datetime) -> list[str]:
    """Why the hold of ``instance_id`` cannot end at ``new_hold_end`` (empty: it fits)."""
    try:
        ledger.copy().extend(instance_id, new_hold_end)
    except InsufficientCapacity as error:
        return list(getattr(error, "reasons", None) or [error.detail])
    return []


def longest_extension(ledger: ReservationLedger, instance_id: str, limit_minutes: int) -> int:
    """The most whole minutes (0..limit_minutes) the hold can be extended by on this ledger."""
    current = ledger.get(instance_id)
    if current is None or limit_minutes <= 0:
        return 0
    low, high = 0, limit_minutes  # low always fits
    while low < high:
        middle = (low + high + 1) // 2
        if extension_fits(ledger, instance_id, current.hold_end + middle * MINUTE):
            high = middle - 1
        else:
            low = middle
    return low


@dataclass(frozen=True)
class RoomPlan:
    """Which reservations must leave the ledger for the extension to fit."""

    fits: bool
    move: tuple[Reservation, ...]  # empty when it fits as it is
    reasons: tuple[str, ...]  # why it does not fit even with every movable one gone


def plan_room(
    ledger: ReservationLedger, instance_id: str, new_hold_end: datetime, movable: Iterable[str]
) -> RoomPlan:
    """The fewest movable reservations to take off so the hold fits up to ``new_hold_end``.

    Greedy and deterministic: take off every movable reservation overlapping the tail, then
    put back (latest start first) each one the extension does not need. Never moves the
    extended reservation itself.
    """
    reasons = extension_fits(ledger, instance_id, new_hold_end)
    if not reasons:
        return RoomPlan(True, (), ())
    current = ledger.get(instance_id)
    if current is None:
        return RoomPlan(False, (), (f"instance {instance_id} holds nothing on this worker",))
    allowed = set(movable) - {instance_id}
    overlapping = [r for r in ledger.overlapping(current.hold_end, new_hold_end) if r.instance_id in allowed]
    trial = ledger.copy()
    for reservation in overlapping:
        trial.remove(reservation.instance_id)
    still = extension_fits(trial, instance_id, new_hold_end)
    if still:
        return RoomPlan(False, (), tuple(still))
    moved = list(overlapping)
    for reservation in sorted(overlapping, key=lambda r: (r.hold_start, r.instance_id), reverse=True):
        try:
            trial.add(reservation)
        except DomainError:
            continue
        if extension_fits(trial, instance_id, new_hold_end):
            trial.remove(reservation.instance_id)
        else:
            moved.remove(reservation)
    moved.sort(key=lambda r: (r.hold_start, r.instance_id))
    return RoomPlan(True, tuple(moved), ())
