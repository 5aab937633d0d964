"""The range of instants the system accepts, and RFC 3339 as the only way to write one.

``datetime`` spans years 1..9999, so arithmetic near either end overflows (a booking at
9999-12-31 plus its duration, a query window from 0001 minus the longest reservation).
Every instant that comes in is therefore held to [EARLIEST, LATEST): wide enough for any
booking, report or audit query, and far enough from the ends that adding a booking's
length, a lead time or a margin cannot overflow.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from domain.errors import InvalidInput

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)

# RFC 3339 §5.6 date-time: full date, "T", full time, fraction optional, offset required.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def parse_instant(field: str, value: object) -> datetime:
    """An RFC 3339 string with an offset → an aware datetime in range; ``InvalidInput`` otherwise.

    Numbers (Unix times), dates without a time and times without an offset are refused:
    the API documents RFC 3339, and a lenient parser is how ``-255`` became a date.
    """
    if isinstance(value, datetime):
        return check_instant(field, value)
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be an RFC 3339 date-time string, got {type(value).__name__}")
    if not _RFC3339.fullmatch(value):
        raise InvalidInput(field, "must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T09:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.upper())  # digits past microseconds are dropped
    except ValueError as error:  # month 13, day 32, hour 25 ...
        raise InvalidInput(field, f"not a valid date-time: {error}") from None
    return check_instant(field, parsed)


def check_instant(field: str, value: datetime) -> datetime:
    """``value`` if it is aware and within [EARLIEST, LATEST)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(field, "must carry a timezone (e.g. 2026-03-01T09:00:00Z)")
    if not EARLIEST <= value < LATEST:
        raise InvalidInput(
            field, f"must be from {EARLIEST.isoformat()} and before {LATEST.isoformat()}, got {value.isoformat()}"
        )
    return value


def minus(value: datetime, amount: timedelta) -> datetime:
    """``value - amount``, or the earliest representable instant instead of OverflowError."""
    try:
        return value - amount
    except OverflowError:
        return datetime.min.replace(tzinfo=timezone.utc)
