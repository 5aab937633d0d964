"""A worker's usage over time during a packing: intervals and cached window peaks.

The packing asks "what is the peak use of this worker over [s, e)?" for many items and
many workers; the same windows come back again and again (an exam wave is hundreds of
identical windows). So instants are plain floats (epoch seconds) and each window's peak
is cached until the timeline changes. The reservation ledger (``domain.ledger``) stays
the authority for real bookings; this is the planner's scratch copy.
"""

from __future__ import annotations

from datetime import datetime

Usage = tuple[float, float, float, float]  # cpu cores, memory GB, storage GB, nodes
ZERO_USAGE: Usage = (0.0, 0.0, 0.0, 0.0)


class Timeline:
    __slots__ = ("_spans", "_cache", "instance_ids")

    def __init__(self) -> None:
        self._spans: list[tuple[float, float, Usage]] = []
        self._cache: dict[tuple[float, float], Usage] = {}
        self.instance_ids: list[str] = []

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, instance_id: str, start: datetime, end: datetime, usage: Usage) -> None:
        self._spans.append((start.timestamp(), end.timestamp(), usage))
        self.instance_ids.append(instance_id)
        self._cache.clear()

    def remove(self, instance_id: str) -> None:
        """Take an instance's span out (consolidation moves it elsewhere)."""
        index = self.instance_ids.index(instance_id)
        del self._spans[index]
        del self.instance_ids[index]
        self._cache.clear()

    def spans(self) -> list[tuple[float, float]]:
        return [(s, e) for s, e, _ in self._spans]

    def peak(self, start: float, end: float) -> Usage:
        """Highest use per field over ``[start, end)`` (maxima may be at different instants)."""
        key = (start, end)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        points: list[tuple[float, float, float, float, float]] = []
        for s, e, (cpu, mem, sto, nodes) in self._spans:
            if s < end and e > start:
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
        result: Usage = (best[0], best[1], best[2], best[3])
        self._cache[key] = result
        return result
