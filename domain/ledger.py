"""A worker's reservation ledger: who holds which resources, nodes and ports, and when.

Every reservation holds its share over a half-open interval ``[hold_start, hold_end)``,
so back-to-back reservations never overlap. A reservation is accepted only if, at
every instant of its interval, the sum of the overlapping reservations stays within
the worker's capacity and node limit, and none of its ports is held by an
overlapping reservation.

How a check stays cheap (see docs/ledger.md): reservations are kept sorted by
``hold_start`` and the ledger remembers the longest hold, so the reservations that
can overlap ``[s, e)`` are exactly those starting in ``(s - longest, e)`` and ending
after ``s``: two bisects find them. The peak over the window is then a sweep over
their start/end points, O(k log k) for k overlapping reservations; the total number
of reservations only costs the O(log n) bisects.

Pure domain code: no clock reads; every instant is passed in (timezone-aware).
"""

from __future__ import annotations

import copy
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from domain.errors import Conflict, InsufficientCapacity, InvalidInput, NotFound
from domain.instants import minus
from domain.resources import FIELDS, TOLERANCE, ZERO, Resources

_NO_DURATION = timedelta(0)


def _require_aware(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(name, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(name, "must be timezone-aware")
    return value


def _require_window(hold_start: datetime, hold_end: datetime) -> None:
    _require_aware("hold_start", hold_start)
    _require_aware("hold_end", hold_end)
    if hold_end <= hold_start:
        raise InvalidInput("hold_end", f"must be after hold_start ({hold_end.isoformat()} <= {hold_start.isoformat()})")


def _parse_instant(name: str, value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(name, f"not an ISO 8601 datetime: {value!r}") from exc
    return _require_aware(name, value)


def _window(hold_start: datetime, hold_end: datetime) -> str:
    return f"[{hold_start.isoformat()}, {hold_end.isoformat()})"


@dataclass(frozen=True)
class Reservation:
    """What one instance holds on one worker over ``[hold_start, hold_end)``."""

    instance_id: str
    resources: Resources
    nodes: int
    ports: dict[str, int]
    hold_start: datetime
    hold_end: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.instance_id, str) or not self.instance_id:
            raise InvalidInput("instance_id", "must be a non-empty string")
        if not isinstance(self.resources, Resources):
            raise InvalidInput("resources", f"must be Resources, got {type(self.resources).__name__}")
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 0:
            raise InvalidInput("nodes", f"must be a non-negative integer, got {self.nodes!r}")
        if not isinstance(self.ports, dict):
            raise InvalidInput("ports", f"must be a mapping of name to port, got {type(self.ports).__name__}")
        for name, port in self.ports.items():
            if not isinstance(name, str) or not name:
                raise InvalidInput("ports", f"port names must be non-empty strings, got {name!r}")
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise InvalidInput("ports", f"{name}: not a TCP port: {port!r}")
        if len(set(self.ports.values())) != len(self.ports):
            raise InvalidInput("ports", f"one port given to two names: {self.ports}")
        _require_window(self.hold_start, self.hold_end)
        # A private copy, so the caller's dict cannot change a recorded reservation.
        object.__setattr__(self, "ports", dict(self.ports))

    @property
    def duration(self) -> timedelta:
        return self.hold_end - self.hold_start

    def overlaps(self, hold_start: datetime, hold_end: datetime) -> bool:
        return self.hold_start < hold_end and hold_start < self.hold_end

    def is_active_at(self, t: datetime) -> bool:
        return self.hold_start <= t < self.hold_end

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "resources": self.resources.to_dict(),
            "nodes": self.nodes,
            "ports": dict(self.ports),
            "hold_start": self.hold_start.isoformat(),
            "hold_end": self.hold_end.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reservation:
        try:
            return cls(
                instance_id=data["instance_id"],
                resources=Resources.from_dict(data["resources"]),
                nodes=data["nodes"],
                ports=dict(data.get("ports") or {}),
                hold_start=_parse_instant("hold_start", data["hold_start"]),
                hold_end=_parse_instant("hold_end", data["hold_end"]),
            )
        except KeyError as exc:
            raise InvalidInput("reservation", f"missing {exc.args[0]}") from exc


@dataclass(frozen=True)
class _FieldPeak:
    value: float
    at: datetime


def sweep_peaks(points: list[tuple[datetime, float, float, float, int]], since: datetime,
                ) -> tuple[tuple[float, datetime], tuple[float, datetime], tuple[float, datetime], tuple[int, datetime]]:
    """Highest running total per field (cpu, memory, storage, nodes) of ``(at, d_cpu, d_mem,
    d_sto, d_nodes)`` change points, and when each is first reached (``since`` if never
    above zero). Every change at one instant is applied before measuring: an end and a start
    at the same instant are back-to-back, not overlapping."""
    points.sort(key=itemgetter(0))
    # Unrolled per field: this loop is the hot path of every placement check.
    cpu = mem = sto = 0.0
    nodes = 0
    best_cpu = best_mem = best_sto = 0.0
    best_nodes = 0
    at_cpu = at_mem = at_sto = at_nodes = since
    count = len(points)
    i = 0
    while i < count:
        t = points[i][0]
        while i < count and points[i][0] == t:
            _, d_cpu, d_mem, d_sto, d_nodes = points[i]
            cpu += d_cpu
            mem += d_mem
            sto += d_sto
            nodes += d_nodes
            i += 1
        if cpu > best_cpu + TOLERANCE:
            best_cpu, at_cpu = cpu, t
        if mem > best_mem + TOLERANCE:
            best_mem, at_mem = mem, t
        if sto > best_sto + TOLERANCE:
            best_sto, at_sto = sto, t
        if nodes > best_nodes:
            best_nodes, at_nodes = nodes, t
    return (best_cpu, at_cpu), (best_mem, at_mem), (best_sto, at_sto), (best_nodes, at_nodes)


class ReservationLedger:
    """The reservations of one worker, with capacity, node limit and port range.

    ``port_range`` is inclusive at both ends: ``(2000, 2099)`` offers 100 ports.
    """

    def __init__(self, capacity: Resources, max_nodes: int, port_range: tuple[int, int]) -> None:
        if not isinstance(capacity, Resources):
            raise InvalidInput("capacity", f"must be Resources, got {type(capacity).__name__}")
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 0:
            raise InvalidInput("max_nodes", f"must be a non-negative integer, got {max_nodes!r}")
        low, high = port_range
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= 65535):
            raise InvalidInput("port_range", f"must be 1 <= start <= end <= 65535, got {port_range!r}")
        self.capacity = capacity
        self.max_nodes = max_nodes
        self.port_range = (low, high)
        self._by_id: dict[str, Reservation] = {}
        # Parallel sorted lists: keys (hold_start, instance_id) for exact removal,
        # and the bare start times for bisecting by time.
        self._keys: list[tuple[datetime, str]] = []
        self._starts: list[datetime] = []
        self._durations: Counter[timedelta] = Counter()
        self._longest = _NO_DURATION

    def __deepcopy__(self, memo: dict[int, Any]) -> ReservationLedger:
        """Its own containers, the same values: reservations, times and tuples are immutable.
        (The event store deep-copies every cached worker it hands out; copying each
        reservation field by field was most of a worker load.)"""
        clone = object.__new__(ReservationLedger)
        for name, value in vars(self).items():
            setattr(clone, name, copy.copy(value) if isinstance(value, (dict, list, set)) else value)
        memo[id(self)] = clone
        return clone

    # -- reading -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Reservation]:
        return iter(self.reservations())

    def __contains__(self, instance_id: object) -> bool:
        return instance_id in self._by_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReservationLedger):
            return NotImplemented
        return (
            self.capacity == other.capacity
            and self.max_nodes == other.max_nodes
            and self.port_range == other.port_range
            and self._by_id == other._by_id
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"ReservationLedger(capacity={self.capacity!r}, max_nodes={self.max_nodes}, "
            f"port_range={self.port_range}, reservations={len(self)})"
        )

    def get(self, instance_id: str) -> Reservation | None:
        return self._by_id.get(instance_id)

    def reservations(self) -> list[Reservation]:
        """All reservations, ordered by (hold_start, instance_id)."""
        return [self._by_id[instance_id] for _, instance_id in self._keys]

    def overlapping(self, hold_start: datetime, hold_end: datetime) -> list[Reservation]:
        """Reservations sharing at least one instant with ``[hold_start, hold_end)``, by start."""
        _require_window(hold_start, hold_end)
        return self._overlapping(hold_start, hold_end)

    def active_at(self, t: datetime) -> list[Reservation]:
        _require_aware("t", t)
        high = bisect_right(self._starts, t)
        low = bisect_left(self._starts, minus(t, self._longest), 0, high)
        by_id = self._by_id
        return [r for r in (by_id[i] for _, i in self._keys[low:high]) if r.hold_end > t]

    def usage_at(self, t: datetime) -> tuple[Resources, int]:
        active = self.active_at(t)
        return _sum_resources(r.resources for r in active), sum(r.nodes for r in active)

    def peak(self, hold_start: datetime, hold_end: datetime) -> tuple[Resources, int]:
        """Highest usage over the window, per field (the maxima may be at different instants)."""
        _require_window(hold_start, hold_end)
        peaks = self._peaks(self._overlapping(hold_start, hold_end), hold_start, hold_end)
        return Resources(*(peaks[name].value for name in FIELDS)), int(round(peaks["nodes"].value))

    def used_ports(self, hold_start: datetime, hold_end: datetime) -> set[int]:
        """Ports held by any reservation overlapping the window (inside the range or not)."""
        _require_window(hold_start, hold_end)
        return {p for r in self._overlapping(hold_start, hold_end) for p in r.ports.values()}

    def free_port_count(self, hold_start: datetime, hold_end: datetime) -> int:
        low, high = self.port_range
        used_in_range = sum(1 for p in self.used_ports(hold_start, hold_end) if low <= p <= high)
        return high - low + 1 - used_in_range

    def last_hold_end(self) -> datetime | None:
        return max((r.hold_end for r in self._by_id.values()), default=None)

    def check(
        self,
        resources: Resources,
        nodes: int,
        port_count: int,
        hold_start: datetime,
        hold_end: datetime,
    ) -> list[str]:
        """Why a reservation of this size would not fit; empty when it fits at every instant."""
        _require_window(hold_start, hold_end)
        if isinstance(port_count, bool) or not isinstance(port_count, int) or port_count < 0:
            raise InvalidInput("port_count", f"must be a non-negative integer, got {port_count!r}")
        overlapping = self._overlapping(hold_start, hold_end)
        reasons = self._capacity_reasons(overlapping, resources, nodes, hold_start, hold_end)
        if port_count > 0:
            low, high = self.port_range
            used = {p for r in overlapping for p in r.ports.values() if low <= p <= high}
            free = high - low + 1 - len(used)
            if port_count > free:
                reasons.append(
                    f"ports: {port_count} needed, {free} free in {low}-{high} over {_window(hold_start, hold_end)}"
                )
        return reasons

    def allocate_ports(self, port_names: list[str], hold_start: datetime, hold_end: datetime) -> dict[str, int]:
        """Lowest free ports of the range for the window, given to the names in order.

        Pure: nothing is held until a reservation with these ports is ``add``-ed.
        """
        _require_window(hold_start, hold_end)
        names = list(port_names)
        if len(set(names)) != len(names):
            raise InvalidInput("port_names", f"duplicate names in {names}")
        if not names:
            return {}
        used = self.used_ports(hold_start, hold_end)
        low, high = self.port_range
        allocated: dict[str, int] = {}
        candidate = low
        for name in names:
            while candidate <= high and candidate in used:
                candidate += 1
            if candidate > high:
                free = high - low + 1 - sum(1 for p in used if low <= p <= high)
                raise InsufficientCapacity(
                    f"ports: {len(names)} needed, {free} free in {low}-{high} over {_window(hold_start, hold_end)}"
                )
            allocated[name] = candidate
            candidate += 1
        return allocated

    # -- changing ------------------------------------------------------------

    def add(self, reservation: Reservation, *, verify: bool = True) -> None:
        """Record a reservation after re-checking it.

        Raises ``Conflict`` for a known instance id or a port held by an overlapping
        reservation, ``InsufficientCapacity`` when it does not fit, ``InvalidInput``
        for a port outside the range. ``verify=False`` skips the capacity and port
        checks: only for rebuilding a ledger from events that were checked when
        recorded (a replay must never fail because, say, a template was edited).
        """
        if not isinstance(reservation, Reservation):
            raise InvalidInput("reservation", f"must be a Reservation, got {type(reservation).__name__}")
        if reservation.instance_id in self._by_id:
            raise Conflict(f"instance {reservation.instance_id} already holds a reservation on this worker")
        if verify:
            self._verify(reservation)
        self._insert(reservation)

    def remove(self, instance_id: str) -> Reservation:
        reservation = self._by_id.get(instance_id)
        if reservation is None:
            raise NotFound(f"no reservation for instance {instance_id}")
        self._delete(reservation)
        return reservation

    def extend(self, instance_id: str, new_hold_end: datetime) -> Reservation:
        """Move the end of a hold; a later end must fit, ports included. Returns the new reservation.

        An earlier end (a shortening) always fits and releases the tail.
        """
        current = self._by_id.get(instance_id)
        if current is None:
            raise NotFound(f"no reservation for instance {instance_id}")
        _require_aware("new_hold_end", new_hold_end)
        if new_hold_end <= current.hold_start:
            raise InvalidInput(
                "new_hold_end",
                f"must be after hold_start {current.hold_start.isoformat()}, got {new_hold_end.isoformat()}",
            )
        extended = replace(current, hold_end=new_hold_end)
        if new_hold_end > current.hold_end:
            # The tail [old end, new end) is disjoint from the current hold, so the
            # current reservation does not count against its own extension.
            tail_start, tail_end = current.hold_end, new_hold_end
            overlapping = self._overlapping(tail_start, tail_end)
            reasons = self._capacity_reasons(
                overlapping, current.resources, current.nodes, tail_start, tail_end
            ) + self._port_clashes(current, overlapping)
            if reasons:
                raise _insufficient(f"cannot extend {instance_id} to {new_hold_end.isoformat()}", reasons)
        self._delete(current)
        self._insert(extended)
        return extended

    def copy(self) -> ReservationLedger:
        twin = ReservationLedger(self.capacity, self.max_nodes, self.port_range)
        for reservation in self.reservations():
            twin._insert(reservation)
        return twin

    def to_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity.to_dict(),
            "max_nodes": self.max_nodes,
            "port_range": list(self.port_range),
            "reservations": [r.to_dict() for r in self.reservations()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReservationLedger:
        low, high = data["port_range"]
        ledger = cls(Resources.from_dict(data["capacity"]), data["max_nodes"], (low, high))
        for item in data.get("reservations", []):
            ledger.add(Reservation.from_dict(item), verify=False)
        return ledger

    # -- internals -----------------------------------------------------------

    def _insert(self, reservation: Reservation) -> None:
        key = (reservation.hold_start, reservation.instance_id)
        index = bisect_left(self._keys, key)
        self._keys.insert(index, key)
        self._starts.insert(index, reservation.hold_start)
        self._by_id[reservation.instance_id] = reservation
        duration = reservation.duration
        self._durations[duration] += 1
        if duration > self._longest:
            self._longest = duration

    def _delete(self, reservation: Reservation) -> None:
        index = bisect_left(self._keys, (reservation.hold_start, reservation.instance_id))
        del self._keys[index]
        del self._starts[index]
        del self._by_id[reservation.instance_id]
        duration = reservation.duration
        self._durations[duration] -= 1
        if not self._durations[duration]:
            del self._durations[duration]
            if duration == self._longest:
                self._longest = max(self._durations, default=_NO_DURATION)

    def _overlapping(self, hold_start: datetime, hold_end: datetime) -> list[Reservation]:
        # Anything starting at or before hold_start - longest has ended by hold_start.
        high = bisect_left(self._starts, hold_end)
        low = bisect_right(self._starts, minus(hold_start, self._longest), 0, high)
        by_id = self._by_id
        return [r for r in (by_id[i] for _, i in self._keys[low:high]) if r.hold_end > hold_start]

    def _peaks(self, overlapping: list[Reservation], hold_start: datetime, hold_end: datetime) -> dict[str, _FieldPeak]:
        """Sweep the start/end points inside the window; usage is constant between them."""
        points: list[tuple[datetime, float, float, float, int]] = []
        append = points.append
        for r in overlapping:
            res = r.resources
            start = r.hold_start if r.hold_start > hold_start else hold_start
            append((start, res.cpu_cores, res.memory_gb, res.storage_gb, r.nodes))
            if r.hold_end < hold_end:
                append((r.hold_end, -res.cpu_cores, -res.memory_gb, -res.storage_gb, -r.nodes))
        (best_cpu, at_cpu), (best_mem, at_mem), (best_sto, at_sto), (best_nodes, at_nodes) = \
            sweep_peaks(points, hold_start)
        return {
            "cpu_cores": _FieldPeak(best_cpu, at_cpu),
            "memory_gb": _FieldPeak(best_mem, at_mem),
            "storage_gb": _FieldPeak(best_sto, at_sto),
            "nodes": _FieldPeak(best_nodes, at_nodes),
        }

    def _capacity_reasons(
        self,
        overlapping: list[Reservation],
        resources: Resources,
        nodes: int,
        hold_start: datetime,
        hold_end: datetime,
    ) -> list[str]:
        if not isinstance(resources, Resources):
            raise InvalidInput("resources", f"must be Resources, got {type(resources).__name__}")
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 0:
            raise InvalidInput("nodes", f"must be a non-negative integer, got {nodes!r}")
        peaks = self._peaks(overlapping, hold_start, hold_end)
        reasons = []
        for name in FIELDS:
            peak = peaks[name]
            needed = peak.value + getattr(resources, name)
            capacity = getattr(self.capacity, name)
            if needed > capacity + TOLERANCE:
                reasons.append(f"{name}: {needed:g} needed at peak {peak.at.isoformat()}, capacity {capacity:g}")
        node_peak = peaks["nodes"]
        needed_nodes = int(round(node_peak.value)) + nodes
        if needed_nodes > self.max_nodes:
            reasons.append(f"nodes: {needed_nodes} needed at peak {node_peak.at.isoformat()}, max_nodes {self.max_nodes}")
        return reasons

    @staticmethod
    def _port_clashes(reservation: Reservation, overlapping: Iterable[Reservation]) -> list[str]:
        wanted = {port: name for name, port in reservation.ports.items()}
        clashes = []
        for other in overlapping:
            if other.instance_id == reservation.instance_id:
                continue
            for other_name, port in other.ports.items():
                if port in wanted:
                    clashes.append(
                        f"ports: {port} ({wanted[port]}) is held by {other.instance_id} ({other_name}) "
                        f"over {_window(other.hold_start, other.hold_end)}"
                    )
        return clashes

    def _verify(self, reservation: Reservation) -> None:
        low, high = self.port_range
        outside = {n: p for n, p in reservation.ports.items() if not low <= p <= high}
        if outside:
            raise InvalidInput("ports", f"outside the worker's port range {low}-{high}: {outside}")
        overlapping = self._overlapping(reservation.hold_start, reservation.hold_end)
        clashes = self._port_clashes(reservation, overlapping)
        if clashes:
            raise Conflict(f"reservation for {reservation.instance_id} clashes: " + "; ".join(clashes))
        reasons = self._capacity_reasons(
            overlapping, reservation.resources, reservation.nodes, reservation.hold_start, reservation.hold_end
        )
        if reasons:
            raise _insufficient(
                f"reservation for {reservation.instance_id} over "
                f"{_window(reservation.hold_start, reservation.hold_end)} does not fit",
                reasons,
            )


def _sum_resources(items: Iterable[Resources]) -> Resources:
    total = ZERO
    for item in items:
        total = total + item
    return total


def _insufficient(summary: str, reasons: list[str]) -> InsufficientCapacity:
    error = InsufficientCapacity(f"{summary}: " + "; ".join(reasons))
    error.reasons = reasons  # type: ignore[attr-defined]  # for placement decisions that list them
    return error
