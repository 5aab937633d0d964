"""A worker's usage over time during a packing: intervals and cached window peaks.

The packing asks "what is the peak use of this worker over [s, e)?" for many items and
many workers; the same windows come back again and again (an exam wave is hundreds of
identical windows, and every plan re-asks the windows of the whole queue). So:

- instants are plain floats (epoch seconds);
- spans are indexed by start (with the longest span's length), so a peak only looks at
  the spans that can overlap the window, not at the worker's whole day;
- each window's peak is cached until the timeline changes;
- a timeline built from an unchanged worker (or template) shares a ``PeakCache`` with the
  timelines of the previous plans (see ``fleet_bin``, ``launch_bin``). A plan re-packs
  the same queue onto the same workers in the same order as the plan before, so the
  sequence of spans added to a bin recurs: the cache names each sequence (a state: the
  worker's reservations plus the spans added so far, in order) and keeps its window
  peaks. It serves windows that start at or after ``shared_from``, where reservations
  that had ended by then (left out of the timeline) cannot overlap.

A peak is computed from exactly the same points, in the same order, as a sweep over every
span would use (the overlapping spans in insertion order), so the float sums and hence
every fit decision are the same. The reservation ledger (``domain.ledger``) stays the
authority for real bookings; this is the planner's scratch copy.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from datetime import datetime

Usage = tuple[float, float, float, float]  # cpu cores, memory GB, storage GB, nodes
ZERO_USAGE: Usage = (0.0, 0.0, 0.0, 0.0)
Span = tuple[float, float, Usage]


class PeakCache:
    """Window peaks of a worker's (or an empty worker's) timelines across plans.

    ``state`` 0 is the timeline as built; adding a span leads from one state to the next,
    the same span from the same state always to the same next state. Ids are never reused,
    so starting afresh when full cannot mistake one state for another."""

    __slots__ = ("peaks", "states", "_next_id", "limit")

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit  # entries kept in each dict; past it the cache starts afresh
        self.peaks: dict[tuple[int, float, float], Usage] = {}
        self.states: dict[tuple[int, Span], int] = {}
        self._next_id = 1

    def after(self, state: int, span: Span) -> int:
        key = (state, span)
        found = self.states.get(key)
        if found is None:
            if len(self.states) >= self.limit:
                self.states.clear()
            found = self._next_id
            self._next_id += 1
            self.states[key] = found
        return found

    def remember(self, key: tuple[int, float, float], peak: Usage) -> None:
        if len(self.peaks) >= self.limit:
            self.peaks.clear()
        self.peaks[key] = peak


class Timeline:
    __slots__ = ("_spans", "_seqs", "_by_start", "_longest", "_next_seq", "_cache", "_shared", "_shared_from",
                 "_state", "instance_ids")

    def __init__(self) -> None:
        self._spans: list[Span] = []  # insertion order
        self._seqs: list[int] = []  # each span's insertion number (never reused)
        self._by_start: list[tuple[float, int]] = []  # (start, seq), sorted
        self._longest = 0.0  # the longest span ever added (an upper bound after removals)
        self._next_seq = 0
        self._cache: dict[tuple[float, float], Usage] = {}
        self._shared: PeakCache | None = None
        self._shared_from = 0.0
        self._state = 0
        self.instance_ids: list[str] = []

    @classmethod
    def of_spans(cls, spans: list[tuple[str, float, float, Usage]], *,
                 shared: PeakCache | None = None, shared_from: float = float("-inf")) -> Timeline:
        """A timeline holding ``spans`` (instance id, start, end, usage), sorted by start.

        ``shared``: the peak cache of every timeline built from the same spans plus spans
        that ended before ``shared_from``; used only for windows that start at or after it."""
        timeline = cls()
        timeline._spans = [(s, e, u) for _, s, e, u in spans]
        timeline.instance_ids = [i for i, _, _, _ in spans]
        n = len(spans)
        timeline._seqs = list(range(n))
        timeline._next_seq = n
        timeline._by_start = sorted((s, k) for k, (_, s, _, _) in enumerate(spans))
        timeline._longest = max((e - s for _, s, e, _ in spans), default=0.0)
        timeline._shared = shared
        timeline._shared_from = shared_from
        return timeline

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, instance_id: str, start: datetime, end: datetime, usage: Usage) -> None:
        s, e = start.timestamp(), end.timestamp()
        seq = self._next_seq
        self._next_seq += 1
        span = (s, e, usage)
        self._spans.append(span)
        self._seqs.append(seq)
        insort(self._by_start, (s, seq))
        if e - s > self._longest:
            self._longest = e - s
        self.instance_ids.append(instance_id)
        self._cache.clear()
        if self._shared is not None:
            self._state = self._shared.after(self._state, span)

    def remove(self, instance_id: str) -> None:
        """Take an instance's span out (consolidation moves it elsewhere)."""
        index = self.instance_ids.index(instance_id)
        s = self._spans[index][0]
        seq = self._seqs[index]
        del self._spans[index]
        del self._seqs[index]
        del self.instance_ids[index]
        del self._by_start[bisect_left(self._by_start, (s, seq))]
        self._cache.clear()
        self._shared = None  # a state is a sequence of adds: a removal leaves the cache

    def spans(self) -> list[tuple[float, float]]:
        return [(s, e) for s, e, _ in self._spans]

    def _overlapping(self, start: float, end: float) -> list[Span]:
        """Spans overlapping ``[start, end)``, in insertion order."""
        by_start = self._by_start
        # A span starting before start - longest has ended by start (a second of slack
        # against float rounding: the exact test below decides).
        low = bisect_left(by_start, (start - self._longest - 1.0, -1))
        high = bisect_left(by_start, (end, -1), low)
        if high - low == len(self._spans):
            return [sp for sp in self._spans if sp[0] < end and sp[1] > start]
        seqs = sorted(seq for _, seq in by_start[low:high])
        spans = self._spans
        if len(spans) == self._next_seq:  # nothing removed: a span's number is its index
            chosen = [spans[seq] for seq in seqs]
        else:  # numbers increase along _spans: find each by bisection
            all_seqs = self._seqs
            chosen = [spans[bisect_left(all_seqs, seq)] for seq in seqs]
        return [sp for sp in chosen if sp[0] < end and sp[1] > start]

    def peak(self, start: float, end: float) -> Usage:
        """Highest use per field over ``[start, end)`` (maxima may be at different instants)."""
        key = (start, end)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        shared = self._shared if self._shared is not None and start >= self._shared_from else None
        if shared is not None:
            cached = shared.peaks.get((self._state, start, end))
            if cached is not None:
                self._cache[key] = cached
                return cached
        result = sweep_peak(self._overlapping(start, end), start, end)
        self._cache[key] = result
        if shared is not None:
            shared.remember((self._state, start, end), result)
        return result


def sweep_peak(overlapping: list[Span], start: float, end: float) -> Usage:
    """Peak per field of ``overlapping`` spans over ``[start, end)``: a sweep of their ends."""
    points: list[tuple[float, float, float, float, float]] = []
    for s, e, (cpu, mem, sto, nodes) in overlapping:
        points.append((s if s > start else start, cpu, mem, sto, nodes))
        if e < end:
            points.append((e, -cpu, -mem, -sto, -nodes))
    best = [0.0, 0.0, 0.0, 0.0]
    if points:
        points.sort(key=lambda p: p[0])
        cpu = mem = sto = nodes = 0.0
        i, n = 0, len(points)
        while i < n:
            t = points[i][0]
            # every change at one instant before measuring: back-to-back holds do not overlap
            while i < n and points[i][0] == t:
                _, dc, dm, ds, dn = points[i]
                cpu += dc
                mem += dm
                sto += ds
                nodes += dn
                i += 1
            if cpu > best[0]:
                best[0] = cpu
            if mem > best[1]:
                best[1] = mem
            if sto > best[2]:
                best[2] = sto
            if nodes > best[3]:
                best[3] = nodes
    return (best[0], best[1], best[2], best[3])
