"""Load an aggregate when it may not exist: ``None`` instead of ``NotFound``.

Process managers and command handlers look up streams named in events or requests; a
stream that is missing, or holds another kind of aggregate, is the same answer to them.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from domain.errors import NotFound

A = TypeVar("A")


class GetsAggregates(Protocol):
    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...


def load_or_none(store: GetsAggregates, stream_id: str | None, kind: type[A]) -> A | None:
    """The ``kind`` aggregate at ``stream_id``, or ``None`` (no id, no stream, another kind)."""
    if not stream_id:
        return None
    try:
        found = store.get(stream_id)
    except NotFound:
        return None
    return found if isinstance(found, kind) else None
