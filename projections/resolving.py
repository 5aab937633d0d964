"""An admin resolves a parked event: retry it (applied now, after a fix) or skip it."""

from __future__ import annotations

from projections.batch import DocumentBatch
from projections.parking import PARKED_STATUS, RETRIED_STATUS, SKIPPED_STATUS, ParkedEvent, get_parked, mark
from projections.ports import EventFeed
from projections.readmodel import ReadModelStore
from projections.targets import Target


class ParkedRetryFailed(Exception):
    """A retried parked event failed again (it stays parked, with the new error)."""


def parked_now(store: ReadModelStore, name: str, position: int) -> ParkedEvent:
    parked = get_parked(store, name, position)
    if parked is None or parked.status != PARKED_STATUS:
        raise KeyError(f"no event parked for {name} at position {position}")
    return parked


def retry_parked(events: EventFeed, store: ReadModelStore, target: Target, position: int) -> ParkedEvent:
    """Apply the event parked for ``target`` at ``position`` now, out of order, and mark it
    ``retried``. ``KeyError`` when nothing is parked there; ``ParkedRetryFailed`` when it
    fails again."""
    parked = parked_now(store, target.name, position)
    found = events.read_all(after=position - 1, limit=1)
    if not found or found[0].position != position:
        raise KeyError(f"event at position {position} is not in the log")
    try:
        with store.transaction() as tx:
            docs = DocumentBatch(tx, target.rename)
            target.projection.handle(found[0], docs)
            docs.flush()
            mark(tx, parked, RETRIED_STATUS)
    except Exception as error:  # noqa: BLE001 - reported to the admin, still parked
        with store.transaction() as tx:
            mark(tx, parked, PARKED_STATUS, error=f"{type(error).__name__}: {error}")
        raise ParkedRetryFailed(f"{target.name}@{position}: {type(error).__name__}: {error}") from error
    return get_parked(store, target.name, position) or parked


def skip_parked(store: ReadModelStore, name: str, position: int) -> ParkedEvent:
    parked = parked_now(store, name, position)
    with store.transaction() as tx:
        mark(tx, parked, SKIPPED_STATUS)
    return get_parked(store, name, position) or parked
