"""Booking windows (SPEC §3.3, §4): validate a requested timeslot and derive the hold window.

Pure functions over timezone-aware datetimes; ``now`` is always passed in. The API uses
``validate_timeslot`` for its 422s, the scheduler uses ``hold_window`` for reservations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidInput
from domain.instants import check_instant

# Shorter than this is no lab (a microsecond "booking" only costs a placement and a hold).
MIN_SLOT = timedelta(minutes=1)
DEFAULT_INSTANTIATION_LEAD = timedelta(minutes=15)
DEFAULT_TEARDOWN_MARGIN = timedelta(minutes=30)


@dataclass(frozen=True)
class Timeslot:
    """``start`` None means as soon as possible; ``end`` is always known."""

    start: datetime | None
    end: datetime

    @property
    def is_asap(self) -> bool:
        return self.start is None

    def effective_start(self, now: datetime) -> datetime:
        return now if self.start is None or self.start < now else self.start


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "must carry a timezone (e.g. 2026-03-01T09:00:00Z)")
    return check_instant(field, value)


def validate_timeslot(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    max_duration_minutes: int,
    duration_minutes: int | None = None,
) -> Timeslot:
    """A valid timeslot, or ``InvalidInput`` naming the faulty field.

    ``start`` absent or not in the future → ASAP (counted from ``now``). Give ``end`` or
    ``duration_minutes`` (both only if they agree); neither → the definition's maximum.
    Instants must lie in ``domain.instants``' range (checked before any arithmetic, which
    would otherwise overflow near year 9999) and the slot must last at least ``MIN_SLOT``.
    """
    start = _aware(start, "timeslot_start")
    end = _aware(end, "timeslot_end")
    _aware(now, "now")
    if start is not None and start <= now:
        start = None
    begins = start or now
    if duration_minutes is not None:
        if isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int) or duration_minutes <= 0:
            raise InvalidInput("duration_minutes", f"must be a positive integer, got {duration_minutes!r}")
        implied_end = begins + timedelta(minutes=duration_minutes)
        if end is not None and end != implied_end:
            raise InvalidInput("duration_minutes", "disagrees with timeslot_end; give one of them")
        end = implied_end
    if end is None:
        end = begins + timedelta(minutes=max_duration_minutes)
    if end <= begins:
        raise InvalidInput("timeslot_end", f"must be after the start {begins.isoformat()}, got {end.isoformat()}")
    if end - begins < MIN_SLOT:
        raise InvalidInput("timeslot_end", f"the slot must last at least {MIN_SLOT.total_seconds() / 60:g} min, "
                                           f"got {(end - begins).total_seconds():g} s")
    if end - begins > timedelta(minutes=max_duration_minutes):
        length = int((end - begins).total_seconds() // 60)
        raise InvalidInput(
            "timeslot_end", f"slot of {length} min exceeds the definition's maximum of {max_duration_minutes} min"
        )
    return Timeslot(start, end)


def hold_window(
    timeslot_start: datetime | None,
    timeslot_end: datetime,
    now: datetime,
    instantiation_lead: timedelta = DEFAULT_INSTANTIATION_LEAD,
    teardown_margin: timedelta = DEFAULT_TEARDOWN_MARGIN,
) -> tuple[datetime, datetime]:
    """``[start − lead, end + margin)``; ASAP (or a lead already begun) starts ``now``."""
    hold_start = now if timeslot_start is None else max(now, timeslot_start - instantiation_lead)
    hold_end = timeslot_end + teardown_margin
    if hold_end <= hold_start:
        raise InvalidInput("timeslot_end", f"has passed: hold would end {hold_end.isoformat()} before it starts")
    return hold_start, hold_end
