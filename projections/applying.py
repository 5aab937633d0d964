"""Applying one batch of events to projections, in ONE transaction with their checkpoints.

Exactly-once: a batch's read-model writes and the new checkpoints commit together, so a
crash anywhere leaves either both or neither. Inside that transaction each checkpoint is
re-read (and on PostgreSQL locked), so several runners over the same read models never
apply an event twice, and one that finds a checkpoint behind what it follows re-syncs
(``Behind``) instead of leaving a hole.

No poison events (issue 16): an event whose ``handle`` raises is parked for that
projection (projections/parking.py) and the batch goes on without it; when the database
refuses the batch's writes, the batch is replayed one event per transaction to find the
event it refuses, which is parked once the store is shown healthy (a probe transaction
commits and the event fails again), so an outage is retried, never parked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from projections.batch import DocumentBatch
from projections.events import StoredEvent
from projections.parking import park
from projections.readmodel import ReadModelStore, ReadModelTx
from projections.targets import Target

log = logging.getLogger(__name__)


class Behind(Exception):  # noqa: N818 - control flow, not an error
    """A checkpoint is behind the feed (reset, rebuilt or promoted elsewhere): re-sync."""


# Documents a shadow rebuild keeps in memory between its batches (per projection).
CARRY_LIMIT = 20_000


class BatchApplier:
    def __init__(self, store: ReadModelStore, carry_limit: int = CARRY_LIMIT) -> None:
        self.store = store
        self.parked = 0  # events parked by this process (metrics / logs)
        self.carry_limit = carry_limit
        # Shadow target -> (position it was committed at, its documents). Only shadows: no
        # one else writes them (another runner building the same shadow moves the
        # checkpoint, which drops the carry), while a live model may be written out of band
        # (an admin's retry in another process).
        self._carried: dict[str, tuple[int, dict[tuple[str, str], Any]]] = {}

    def forget_carried(self) -> None:
        self._carried.clear()

    def apply(self, batch: Sequence[StoredEvent], after: int, targets: Sequence[Target]) -> dict[str, int]:
        """Apply ``batch`` (the events after position ``after``); returns the committed positions."""
        try:
            return self._apply_once(batch, after, targets)
        except Behind:
            raise
        except Exception as error:  # noqa: BLE001 - isolated below; an outage re-raises there
            log.warning("projection batch of %d events failed (%s: %s): applying it one event at a time",
                        len(batch), type(error).__name__, error)
            return self._isolate(batch, after, targets)

    # -- one transaction -------------------------------------------------------------------
    def _apply_once(self, batch: Sequence[StoredEvent], after: int, targets: Sequence[Target]) -> dict[str, int]:
        last = batch[-1].position
        assert last is not None
        committed: dict[str, int] = {}
        carry: dict[str, tuple[int, dict[tuple[str, str], Any]]] = {}
        try:
            with self.store.transaction() as tx:
                for target in targets:
                    position = self._locked_position(tx, target, after)
                    previous = self._carried.pop(target.name, None)
                    if position >= last:
                        committed[target.name] = position  # another runner did it
                        continue
                    carried = previous[1] if previous is not None and previous[0] == position else None
                    events = _after(batch, position)
                    docs = self._run(target, events, tx, carried)
                    tx.save_checkpoint(target.name, last, target.version)
                    committed[target.name] = last
                    if target.shadow and docs is not None:
                        carry[target.name] = (last, docs.carry(self.carry_limit))
        except BaseException:
            self._carried.clear()
            raise
        self._carried.update(carry)  # committed: the documents are what the database holds
        return committed

    @staticmethod
    def _locked_position(tx: ReadModelTx, target: Target, after: int) -> int:
        stored = tx.checkpoint(target.name)
        position = stored.position if stored is not None else -1
        if position < after or (stored is not None and stored.version != target.version):
            raise Behind(target.name)  # reset, rebuilt or promoted behind our feed
        return position

    def _run(self, target: Target, events: Sequence[StoredEvent], tx: ReadModelTx,
             carried: dict[tuple[str, str], Any] | None = None) -> DocumentBatch | None:
        """The events through ``handle`` on live documents, written once; a failure parks its
        event. Returns the batch's documents (None when it was redone event by event)."""
        docs = DocumentBatch(tx, target.rename, carried)
        handle, wanted = target.projection.handle, target.projection.event_filter()
        try:
            for stored in [e for e in events if wanted[e.event.__class__]]:
                handle(stored, docs)
        except Exception:  # noqa: BLE001 - redone event by event to find and park the poison
            self._run_each(target, events, tx)
            return None
        docs.flush()
        return docs

    def _run_each(self, target: Target, events: Sequence[StoredEvent], tx: ReadModelTx) -> None:
        # A failed event may have half-changed the live documents it touched: each event gets
        # its own DocumentBatch (fresh copies from the transaction), dropped when it raises.
        wanted = target.projection.event_filter()
        for stored in events:
            if not wanted[stored.event.__class__]:
                continue
            docs = DocumentBatch(tx, target.rename)
            try:
                target.projection.handle(stored, docs)
            except Exception as error:  # noqa: BLE001 - parked, the rest goes on
                self._parked(park(tx, target.name, stored, error, "apply"))
                continue
            docs.flush()

    # -- a batch the database refused: one event per transaction ---------------------------
    def _isolate(self, batch: Sequence[StoredEvent], after: int, targets: Sequence[Target]) -> dict[str, int]:
        committed: dict[str, int] = {}
        for stored in batch:
            assert stored.position is not None
            try:
                committed.update(self._apply_once([stored], after, targets))
            except Behind:
                raise
            except Exception:  # noqa: BLE001 - which projection refuses it?
                for target in targets:
                    try:
                        committed.update(self._apply_once([stored], after, [target]))
                    except Behind:
                        raise
                    except Exception as error:  # noqa: BLE001
                        committed.update(self._park_refused(stored, after, target, error))
            after = stored.position
        return committed

    def _park_refused(self, stored: StoredEvent, after: int, target: Target, error: Exception) -> dict[str, int]:
        assert stored.position is not None
        # Healthy store? A transaction that writes nothing of the event must commit; if it
        # does not, this is an outage: raise, and the follower retries with backoff.
        with self.store.transaction() as tx:
            self._locked_position(tx, target, after)
        try:  # and the event fails again (not a one-off lock timeout)
            return self._apply_once([stored], after, [target])
        except Behind:
            raise
        except Exception as again:  # noqa: BLE001
            error = again
        with self.store.transaction() as tx:
            position = self._locked_position(tx, target, after)
            if position >= stored.position:
                return {target.name: position}
            parked = park(tx, target.name, stored, error, "write")
            tx.save_checkpoint(target.name, stored.position, target.version)
        self._parked(parked)
        return {target.name: stored.position}

    def _parked(self, parked: object) -> None:
        self.parked += 1
        log.error("projection event parked: %s", parked)


def _after(batch: Sequence[StoredEvent], position: int) -> Sequence[StoredEvent]:
    """The events of ``batch`` after ``position`` (all of them, as a rule: no copy then)."""
    first = batch[0].position
    if first is not None and first > position:
        return batch
    return [e for e in batch if e.position is not None and e.position > position]
