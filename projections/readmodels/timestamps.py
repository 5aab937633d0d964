"""How read models write an instant: fixed-width UTC ISO 8601, formatted once per instant.

Every instance event's time is written by several read models (the instance's
``updated_at`` and phase time, its timeline row, the scheduling queue), and a rebuild
formats hundreds of thousands of them: the text of an aware instant is kept in a small
cache (cleared when full), so each is converted and formatted about once.
"""

from __future__ import annotations

from datetime import UTC, datetime

_CACHE_SIZE = 8192
_texts: dict[datetime, str] = {}


def iso(value: datetime | None) -> str | None:
    """Fixed-width UTC ISO 8601 (microseconds, ``+00:00``): sorts like the instants it names."""
    if value is None:
        return None
    text = _texts.get(value) if value.tzinfo is not None else None
    if text is None:
        text = value.astimezone(UTC).isoformat(timespec="microseconds")
        if value.tzinfo is not None:  # equal aware instants are one instant: one text
            if len(_texts) >= _CACHE_SIZE:
                _texts.clear()
            _texts[value] = text
    return text
