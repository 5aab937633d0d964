"""A fleet snapshot kept between decisions, for placing many requests fast.

Two savings over a plain list of candidates:

- workers are grouped by license type, so a license mismatch rejects a whole group
  with one shared record instead of running a filter per worker;
- ledger reads (peak usage, free ports) are remembered per hold window across
  decisions: bookings come in waves on the same timeslots, so the next request for
  the same window reads only the ledgers that changed.

The index does not watch the ledgers: whoever changes one (records a placement,
releases a reservation) calls ``ledger_changed(worker_id)``; a worker whose state or
template facts change is swapped in with ``replace(candidate)``. A forgotten call
can only make a decision stale, never overbook: the worker's ledger re-checks every
reservation it records.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from domain.placement.candidate import WorkerCandidate
from domain.placement.window import WindowReads

#: hold windows whose ledger reads are kept (least recently used ones are dropped)
MAX_WINDOWS = 512


class CandidateIndex:
    def __init__(self, candidates: Iterable[WorkerCandidate], *, max_windows: int = MAX_WINDOWS) -> None:
        self._max_windows = max_windows
        self._windows: OrderedDict[tuple[datetime, datetime], WindowReads] = OrderedDict()
        self._rebuild(tuple(candidates))

    def _rebuild(self, candidates: tuple[WorkerCandidate, ...]) -> None:
        self.candidates = candidates
        self.worker_ids: tuple[str, ...] = tuple(c.worker_id for c in candidates)
        if len(set(self.worker_ids)) != len(self.worker_ids):
            raise ValueError("candidates must have distinct worker ids")
        self.by_license: dict[str, list[WorkerCandidate]] = {}
        for candidate in candidates:
            self.by_license.setdefault(candidate.license_type, []).append(candidate)
        self.ids_by_license: dict[str, tuple[str, ...]] = {
            license_type: tuple(c.worker_id for c in group) for license_type, group in self.by_license.items()
        }
        self._position = {worker_id: n for n, worker_id in enumerate(self.worker_ids)}

    def __len__(self) -> int:
        return len(self.candidates)

    def get(self, worker_id: str) -> WorkerCandidate | None:
        position = self._position.get(worker_id)
        return None if position is None else self.candidates[position]

    def with_licenses(self, license_types: Iterable[str]) -> list[WorkerCandidate]:
        """The candidates of the given license types, in the index's order."""
        groups = [self.by_license[t] for t in license_types if t in self.by_license]
        if len(groups) == 1:
            return list(groups[0])
        merged = [candidate for group in groups for candidate in group]
        merged.sort(key=lambda c: self._position[c.worker_id])
        return merged

    def reads_for(self, hold_start: datetime, hold_end: datetime) -> WindowReads:
        """The remembered ledger reads over this window (created empty on first use)."""
        key = (hold_start, hold_end)
        reads = self._windows.get(key)
        if reads is None:
            reads = self._windows[key] = WindowReads()
            if len(self._windows) > self._max_windows:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        return reads

    def ledger_changed(self, worker_id: str) -> None:
        """Forget what was read from this worker's ledger (it gained or lost a reservation)."""
        candidate = self.get(worker_id)
        if candidate is None:
            raise KeyError(worker_id)
        key = id(candidate.ledger)
        for reads in self._windows.values():
            reads.forget(key)

    def replace(self, candidate: WorkerCandidate) -> None:
        """Swap in a fresh snapshot of one worker (new state, template facts or ledger);
        an unknown worker is added."""
        old = self.get(candidate.worker_id)
        if old is not None:
            self.ledger_changed(old.worker_id)
            updated = list(self.candidates)
            updated[self._position[candidate.worker_id]] = candidate
        else:
            updated = [*self.candidates, candidate]
        self._rebuild(tuple(updated))

    def remove(self, worker_id: str) -> None:
        """Drop a worker (terminated, or no longer offered)."""
        if self.get(worker_id) is None:
            raise KeyError(worker_id)
        self.ledger_changed(worker_id)
        self._rebuild(tuple(c for c in self.candidates if c.worker_id != worker_id))
