"""Parked events: the dead letter of each projection (issue 16: no poison events).

An event a projection cannot apply — its ``handle`` raises, or the documents it writes are
refused by the database (PostgreSQL: "text fields cannot contain NUL") — is parked for
that projection, with the error, and the projection goes on with the next event. A
parked event is a record in the runner's own read-model table ``parked_events``, written
in the same transaction that moves the projection's checkpoint past it (so it is never
both applied and parked, nor lost). Readiness is down while any is parked; an admin
retries one (after a fix: applied now, out of order) or skips it (kept, marked skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.events import StoredEvent
from projections.readmodel import Document, ReadModelStore, ReadModelTx, Table

PARKED = Table("parked_events", {"projection": str, "position": int, "status": str})
PARKED_STATUS = "parked"
SKIPPED_STATUS = "skipped"
RETRIED_STATUS = "retried"
MAX_ERROR = 2000


def parked_key(projection: str, position: int) -> str:
    return f"{projection}@{position:016d}"


def safe_text(value: Any, limit: int = MAX_ERROR) -> str:
    """Text any backend stores: no NUL, no lone surrogates, bounded (the error of a poison
    event often quotes the poison)."""
    text = str(value).replace("\x00", "\\x00")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ParkedEvent:
    projection: str
    position: int
    stream_id: str
    version: int
    event_type: str
    error: str
    stage: str  # "apply" (handle raised) or "write" (the database refused the documents)
    status: str
    parked_at: str
    attempts: int = 1

    @classmethod
    def of(cls, doc: Document) -> ParkedEvent:
        return cls(**{name: doc[name] for name in cls.__dataclass_fields__ if name in doc})

    def to_dict(self) -> Document:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def park(tx: ReadModelTx, projection: str, stored: StoredEvent, error: BaseException, stage: str) -> ParkedEvent:
    """Record ``stored`` as parked for ``projection`` inside ``tx`` (with its checkpoint)."""
    assert stored.position is not None
    key = parked_key(projection, stored.position)
    previous = tx.get(PARKED.name, key)
    parked = ParkedEvent(
        projection=projection, position=stored.position, stream_id=safe_text(stored.stream_id, 300),
        version=stored.version, event_type=safe_text(stored.event_name, 200),
        error=safe_text(f"{type(error).__name__}: {error}"), stage=stage, status=PARKED_STATUS,
        parked_at=datetime.now(UTC).isoformat(), attempts=(previous or {}).get("attempts", 0) + 1,
    )
    tx.put(PARKED.name, key, parked.to_dict())
    return parked


def mark(tx: ReadModelTx, parked: ParkedEvent, status: str, error: str | None = None) -> None:
    doc = parked.to_dict()
    doc.update(status=status, resolved_at=datetime.now(UTC).isoformat())
    if error is not None:
        doc.update(error=safe_text(error), attempts=parked.attempts + 1)
    tx.put(PARKED.name, parked_key(parked.projection, parked.position), doc)


def list_parked(store: ReadModelStore, projection: str | None = None, status: str | None = PARKED_STATUS,
                limit: int = 1000) -> list[ParkedEvent]:
    if not _declared(store):  # a process that never ran the runner (CLI, processor role)
        store.ensure_tables([PARKED])
    where: dict[str, Any] = {}
    if projection is not None:
        where["projection"] = projection
    if status is not None:
        where["status"] = status
    return [ParkedEvent.of(doc) for doc in store.query(PARKED.name, where=where, order_by="position",
                                                       limit=limit).items]


def parked_counts(store: ReadModelStore) -> dict[str, int]:
    """Projection name -> events parked now (not skipped or retried)."""
    counts: dict[str, int] = {}
    for parked in list_parked(store, limit=100_000):
        counts[parked.projection] = counts.get(parked.projection, 0) + 1
    return counts


def get_parked(store: ReadModelStore, projection: str, position: int) -> ParkedEvent | None:
    if not _declared(store):
        store.ensure_tables([PARKED])
    doc = store.get(PARKED.name, parked_key(projection, position))
    return ParkedEvent.of(doc) if doc is not None else None


def _declared(store: ReadModelStore) -> bool:
    try:
        store.table(PARKED.name)  # type: ignore[attr-defined]
    except KeyError:
        return False
    return True
