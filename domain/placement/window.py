"""The reservation ledger read over a request's hold window, at most once per decision.

NodeLimit, ResourcesOverWindow and BinPacking all need the peak usage of the same
ledger over the same window, and ledger reads are most of a decision's cost. So
plugins read through ``window_peak`` / ``window_free_ports``, which consult the memo
``PlacementPipeline.decide`` opens for its own duration: inside one decision the
window is fixed and no ledger changes. A ``CandidateIndex`` keeps such memos across
decisions, per window, until told a worker's ledger changed. Outside a decision (a
plugin called on its own) the ledger is read directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from domain.ledger import ReservationLedger
from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest
from domain.resources import ZERO, Resources


class WindowReads:
    """Ledger reads over one window, keyed by ledger identity."""

    __slots__ = ("peaks", "free_ports")

    def __init__(self) -> None:
        self.peaks: dict[int, tuple[Resources, int]] = {}
        self.free_ports: dict[int, int] = {}

    def forget(self, ledger_key: int) -> None:
        self.peaks.pop(ledger_key, None)
        self.free_ports.pop(ledger_key, None)


_active: ContextVar[WindowReads | None] = ContextVar("placement_window_reads", default=None)
_NOTHING_RESERVED = (ZERO, 0)


def window_peak(request: PlacementRequest, candidate: WorkerCandidate) -> tuple[Resources, int]:
    """Peak resources and nodes already reserved on the candidate over the hold window."""
    ledger = candidate.ledger
    reads = _active.get()
    if reads is None:
        return _read_peak(request, ledger)
    peak = reads.peaks.get(id(ledger))
    if peak is None:
        peak = reads.peaks[id(ledger)] = _read_peak(request, ledger)
    return peak


def window_free_ports(request: PlacementRequest, candidate: WorkerCandidate) -> int:
    """Ports of the candidate's range that no reservation overlapping the window holds."""
    ledger = candidate.ledger
    reads = _active.get()
    if reads is None:
        return _read_free_ports(request, ledger)
    free = reads.free_ports.get(id(ledger))
    if free is None:
        free = reads.free_ports[id(ledger)] = _read_free_ports(request, ledger)
    return free


def window_peaks(request: PlacementRequest, candidates: list[WorkerCandidate]) -> list[tuple[Resources, int]]:
    """``window_peak`` of each candidate, in order (one memo lookup per candidate)."""
    reads = _active.get()
    if reads is None:
        return [_read_peak(request, candidate.ledger) for candidate in candidates]
    peaks = reads.peaks
    found = list(map(peaks.get, [id(candidate.ledger) for candidate in candidates]))
    if None in found:  # first time this window meets these ledgers: read them
        for n, peak in enumerate(found):
            if peak is None:
                ledger = candidates[n].ledger
                found[n] = peaks[id(ledger)] = _read_peak(request, ledger)
    return found  # type: ignore[return-value]


def windows_free_ports(request: PlacementRequest, candidates: list[WorkerCandidate]) -> list[int]:
    """``window_free_ports`` of each candidate, in order."""
    reads = _active.get()
    if reads is None:
        return [_read_free_ports(request, candidate.ledger) for candidate in candidates]
    free_ports = reads.free_ports
    found = list(map(free_ports.get, [id(candidate.ledger) for candidate in candidates]))
    if None in found:
        for n, free in enumerate(found):
            if free is None:
                ledger = candidates[n].ledger
                found[n] = free_ports[id(ledger)] = _read_free_ports(request, ledger)
    return found  # type: ignore[return-value]


def _read_peak(request: PlacementRequest, ledger: ReservationLedger) -> tuple[Resources, int]:
    if not len(ledger):  # an idle worker: nothing to sweep
        return _NOTHING_RESERVED
    return ledger.peak(request.hold_start, request.hold_end)


def _read_free_ports(request: PlacementRequest, ledger: ReservationLedger) -> int:
    if not len(ledger):
        low, high = ledger.port_range
        return high - low + 1
    return ledger.free_port_count(request.hold_start, request.hold_end)


@contextmanager
def reading(reads: WindowReads | None = None) -> Iterator[WindowReads]:
    """Memoise ledger reads while deciding one request (its window, ledgers unchanged)."""
    reads = reads if reads is not None else WindowReads()
    token = _active.set(reads)
    try:
        yield reads
    finally:
        _active.reset(token)
