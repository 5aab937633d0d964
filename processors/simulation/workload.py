"""Workloads for the simulator: a booking trace, and a generator of realistic ones (SPEC §9).

A workload is a YAML (or JSON) document:

```yaml
name: exam-wave
start: 2026-03-02T00:00:00Z      # the simulated clock starts here
hours: 14                        # and stops this long after
seed: 7
definitions:                     # lablet definitions the bookings name (a synthetic lab is published)
  - {name: exam-2node, cpu_cores: 4, memory_gb: 8, node_count: 2, license_affinity: [PERSONAL]}
cloud: {boot_failure_rate: 0.02, jitter: 0.1}
bookings:                        # an explicit trace (times: ISO, "HH:MM", "D+HH:MM" or minutes from start)
  - {id: b1, at: "07:00", definition: exam-2node, start: "09:00", minutes: 60}
  - {id: b2, at: "09:10", definition: exam-2node, minutes: 45, no_show: true}        # ASAP
  - {id: b3, at: "09:10", definition: exam-2node, start: "10:00", minutes: 60, finish_after: 20}
generate:                        # and/or shapes drawn with the seed (see ``SHAPES``)
  - {shape: exam_wave, count: 300, at: "09:00", minutes: 60, definition: exam-2node}
admin_drains:                    # an admin drains the busiest RUNNING worker at these times
  - {at: "09:20"}
```

Per booking: ``at`` (when the request is made), ``definition``, ``start`` (absent: ASAP),
``minutes`` (the timeslot's length), ``owner``, ``no_show`` (never logs in),
``login_after`` (minutes after the lab is ready or the slot begins, whichever is later),
``finish_after`` (minutes after login when the user ends early; absent: uses the whole slot).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ruamel.yaml import YAML


class WorkloadError(ValueError):
    """The workload document is not valid (the message says where)."""


@dataclass(frozen=True)
class DefinitionProfile:
    """What the simulator publishes for a definition name (a synthetic lab of ``node_count`` nodes)."""

    name: str
    cpu_cores: float = 2
    memory_gb: float = 4
    storage_gb: float = 10
    node_count: int = 2
    ports: tuple[str, ...] = ("serial_1",)
    license_affinity: tuple[str, ...] = ("PERSONAL", "ENTERPRISE")
    max_duration_minutes: int = 240
    grading: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cpu_cores": self.cpu_cores, "memory_gb": self.memory_gb,
                "storage_gb": self.storage_gb, "node_count": self.node_count, "ports": list(self.ports),
                "license_affinity": list(self.license_affinity),
                "max_duration_minutes": self.max_duration_minutes, "grading": self.grading}


@dataclass(frozen=True)
class Booking:
    id: str
    at: datetime  # when the request is made
    definition: str
    minutes: int
    start: datetime | None = None  # None: ASAP
    owner: str = ""
    no_show: bool = False
    login_after: float = 2.0  # minutes
    finish_after: float | None = None  # minutes after login; None: the whole slot

    @property
    def asap(self) -> bool:
        return self.start is None

    @property
    def end(self) -> datetime:
        return (self.start or self.at) + timedelta(minutes=self.minutes)

    def to_dict(self, origin: datetime) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "at": _offset(self.at, origin), "definition": self.definition,
                                "minutes": self.minutes}
        if self.start is not None:
            data["start"] = _offset(self.start, origin)
        if self.owner:
            data["owner"] = self.owner
        if self.no_show:
            data["no_show"] = True
        data["login_after"] = self.login_after
        if self.finish_after is not None:
            data["finish_after"] = self.finish_after
        return data


@dataclass(frozen=True)
class AdminDrain:
    """An admin drains a worker at ``at`` (the busiest RUNNING one: most labs active then,
    ties by id); its template's ``drain_timeout_hours`` ends what is left on it."""

    at: datetime


@dataclass(frozen=True)
class CloudProfile:
    boot_failure_rate: float = 0.0
    jitter: float = 0.1


@dataclass(frozen=True)
class Workload:
    name: str
    start: datetime
    end: datetime
    bookings: tuple[Booking, ...]
    definitions: tuple[DefinitionProfile, ...]
    cloud: CloudProfile = CloudProfile()
    templates: tuple[Mapping[str, Any], ...] | None = None  # None: config/worker-templates.yaml
    seed: int = 0
    description: str = ""
    admin_drains: tuple[AdminDrain, ...] = ()

    def definition(self, name: str) -> DefinitionProfile:
        for d in self.definitions:
            if d.name == name:
                return d
        raise WorkloadError(f"no definition {name!r} in workload {self.name!r}")

    def with_seed(self, seed: int) -> Workload:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """A plain trace (generated bookings written out): what ``load_workload`` reads back."""
        data: dict[str, Any] = {
            "name": self.name, "description": self.description, "start": self.start.isoformat(),
            "hours": (self.end - self.start) / timedelta(hours=1), "seed": self.seed,
            "definitions": [d.to_dict() for d in self.definitions],
            "cloud": {"boot_failure_rate": self.cloud.boot_failure_rate, "jitter": self.cloud.jitter},
            "bookings": [b.to_dict(self.start) for b in self.bookings],
        }
        if self.templates is not None:
            data["templates"] = [dict(t) for t in self.templates]
        if self.admin_drains:
            data["admin_drains"] = [{"at": d.at.isoformat()} for d in self.admin_drains]
        return data


# -- reading ---------------------------------------------------------------------------------

Include = Callable[[str], str]


def load_workload(text: str, *, seed: int | None = None, scale: float = 1.0, include: Include | None = None) -> Workload:
    """Parse a workload document (YAML or JSON); ``seed`` overrides the file's; ``scale``
    multiplies every generated count (``--quick`` runs); ``include`` reads the document an
    ``extends:`` names (``api.simulate.read_workload``: a file beside this one)."""
    return workload_from_dict(_document(text, include, depth=0), seed=seed, scale=scale)


def _document(text: str, include: Include | None, depth: int) -> dict[str, Any]:
    """The parsed mapping; ``extends: other.yaml`` starts from that document, this one's keys
    replacing its keys (a mapping such as ``cloud`` is merged key by key)."""
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else YAML(typ="safe").load(text)
    except Exception as error:  # noqa: BLE001 - any parse error is the document's fault
        raise WorkloadError(f"cannot parse the workload: {error}") from error
    if not isinstance(data, Mapping):
        raise WorkloadError("a workload is a mapping with name, start, definitions, bookings/generate")
    data = dict(data)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if include is None:
        raise WorkloadError("extends: only a workload read from a file can extend another")
    if depth >= 5:
        raise WorkloadError(f"extends: {base_name!r} nests too deep (a loop?)")
    try:
        base_text = include(str(base_name))
    except OSError as error:
        raise WorkloadError(f"extends: cannot read {base_name!r}: {error}") from error
    merged = _document(base_text, include, depth + 1)
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def workload_from_dict(data: Mapping[str, Any], *, seed: int | None = None, scale: float = 1.0) -> Workload:
    name = str(data.get("name") or "workload")
    start = _datetime(data.get("start", "2026-03-02T00:00:00Z"), "start")
    hours = float(data.get("hours", 24))
    if hours <= 0:
        raise WorkloadError("hours must be > 0")
    end = start + timedelta(hours=hours)
    seed = int(data.get("seed", 0)) if seed is None else seed
    definitions = tuple(_definition(d, i) for i, d in enumerate(data.get("definitions") or ()))
    if not definitions:
        raise WorkloadError("definitions: at least one is needed")
    cloud_data = data.get("cloud") or {}
    cloud = CloudProfile(float(cloud_data.get("boot_failure_rate", 0.0)), float(cloud_data.get("jitter", 0.1)))
    bookings = [_booking(b, i, start) for i, b in enumerate(data.get("bookings") or ())]
    for index, shape in enumerate(data.get("generate") or ()):
        bookings.extend(generate(shape, start=start, end=end, seed=seed, index=index,
                                 definitions=[d.name for d in definitions], scale=scale))
    known = {d.name for d in definitions}
    for booking in bookings:
        if booking.definition not in known:
            raise WorkloadError(f"booking {booking.id}: unknown definition {booking.definition!r}")
    ids = [b.id for b in bookings]
    if len(set(ids)) != len(ids):
        raise WorkloadError("booking ids must be unique")
    bookings.sort(key=lambda b: (b.at, b.id))
    templates = data.get("templates")
    drains = tuple(sorted((_admin_drain(d, i, start) for i, d in enumerate(data.get("admin_drains") or ())),
                          key=lambda d: d.at))
    return Workload(name=name, start=start, end=end, bookings=tuple(bookings), definitions=definitions,
                    cloud=cloud, templates=tuple(templates) if templates is not None else None, seed=seed,
                    description=str(data.get("description") or ""), admin_drains=drains)


def _admin_drain(data: Any, index: int, origin: datetime) -> AdminDrain:
    if not isinstance(data, Mapping) or "at" not in data or set(data) - {"at"}:
        raise WorkloadError(f"admin_drains[{index}]: a mapping with only an 'at' time")
    return AdminDrain(_moment(data["at"], origin, f"admin_drains[{index}].at"))


def _definition(data: Any, index: int) -> DefinitionProfile:
    if not isinstance(data, Mapping) or not data.get("name"):
        raise WorkloadError(f"definitions[{index}]: a mapping with a name")
    known = {f for f in DefinitionProfile.__dataclass_fields__}
    unknown = set(data) - known
    if unknown:
        raise WorkloadError(f"definitions[{index}]: unknown field(s) {sorted(unknown)}")
    fields = dict(data)
    for key in ("ports", "license_affinity"):
        if key in fields:
            fields[key] = tuple(str(v) for v in fields[key])
    return DefinitionProfile(**fields)


_BOOKING_FIELDS = {"id", "at", "definition", "minutes", "start", "owner", "no_show", "login_after", "finish_after"}


def _booking(data: Any, index: int, origin: datetime) -> Booking:
    if not isinstance(data, Mapping):
        raise WorkloadError(f"bookings[{index}]: a mapping")
    unknown = set(data) - _BOOKING_FIELDS
    if unknown:
        raise WorkloadError(f"bookings[{index}]: unknown field(s) {sorted(unknown)}")
    try:
        minutes = int(data["minutes"])
        definition = str(data["definition"])
    except KeyError as missing:
        raise WorkloadError(f"bookings[{index}]: {missing.args[0]} is required") from None
    if minutes <= 0:
        raise WorkloadError(f"bookings[{index}]: minutes must be > 0")
    at = _moment(data.get("at", 0), origin, f"bookings[{index}].at")
    start = _moment(data["start"], origin, f"bookings[{index}].start") if data.get("start") is not None else None
    if start is not None and start + timedelta(minutes=minutes) <= at:
        raise WorkloadError(f"bookings[{index}]: the slot ends before it is requested")
    finish = data.get("finish_after")
    return Booking(id=str(data.get("id") or f"b{index:05d}"), at=at, definition=definition, minutes=minutes,
                   start=start, owner=str(data.get("owner") or f"user-{index:05d}"),
                   no_show=bool(data.get("no_show", False)), login_after=float(data.get("login_after", 2.0)),
                   finish_after=float(finish) if finish is not None else None)


_RELATIVE = re.compile(r"^(?:(\d+)\s*[d+]\s*\+?\s*)?(\d{1,2}):(\d{2})$")


def _moment(value: Any, origin: datetime, where: str) -> datetime:
    """ISO datetime, "HH:MM" / "D+HH:MM" (day D after the start's midnight), or minutes from start."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return origin + timedelta(minutes=float(value))
    text = str(value).strip()
    match = _RELATIVE.match(text)
    if match:
        day, hour, minute = int(match.group(1) or 0), int(match.group(2)), int(match.group(3))
        midnight = origin.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(days=day, hours=hour, minutes=minute)
    return _datetime(text, where)


def _datetime(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise WorkloadError(f"{where}: {value!r} is not a time (ISO, HH:MM, D+HH:MM or minutes)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _offset(moment: datetime, origin: datetime) -> str:
    """Written as a full ISO time: exact, whatever the origin."""
    return moment.isoformat()


# -- generating ------------------------------------------------------------------------------

Shape = Callable[[Mapping[str, Any], "_Draw"], list[Booking]]


@dataclass
class _Draw:
    """One shape's random source and context (seeded by ``(seed, shape index)``: adding a
    shape to a workload does not change the bookings of the others)."""

    rng: random.Random
    start: datetime
    end: datetime
    definitions: list[str]
    prefix: str
    spec: Mapping[str, Any]
    scale: float
    made: list[Booking] = field(default_factory=list)

    def count(self) -> int:
        return max(1, int(round(int(self.spec.get("count", 100)) * self.scale)))

    def definition(self) -> str:
        names = self.spec.get("definitions") or ([self.spec["definition"]] if self.spec.get("definition") else None)
        names = list(names or self.definitions)
        weights = self.spec.get("weights")
        return self.rng.choices(names, weights=weights)[0] if weights else self.rng.choice(names)

    def minutes(self) -> int:
        choice = self.spec.get("minutes", 60)
        return int(self.rng.choice(choice) if isinstance(choice, Sequence) and not isinstance(choice, str) else choice)

    def moment(self, key: str, default: Any) -> datetime:
        return _moment(self.spec.get(key, default), self.start, f"generate.{key}")

    def booking(self, start: datetime | None, at: datetime, minutes: int) -> Booking:
        number = len(self.made)
        no_show = self.rng.random() < float(self.spec.get("no_show_rate", 0.0))
        early = self.rng.random() < float(self.spec.get("early_finish_rate", 0.0))
        lo, hi = self.spec.get("login_after", (0.5, 5.0))
        finish = round(minutes * self.rng.uniform(0.3, 0.9), 1) if early and not no_show else None
        booking = Booking(
            id=f"{self.prefix}-{number:05d}", at=max(at, self.start), definition=self.definition(), minutes=minutes,
            start=start, owner=f"{self.prefix}-user-{number:05d}", no_show=no_show,
            login_after=round(self.rng.uniform(float(lo), float(hi)), 2), finish_after=finish,
        )
        self.made.append(booking)
        return booking

    def booked_ahead(self, start: datetime) -> datetime:
        lo, hi = self.spec.get("booked_ahead_minutes", (60, 24 * 60))
        return start - timedelta(seconds=round(60 * self.rng.uniform(float(lo), float(hi))))


def _exam_wave(spec: Mapping[str, Any], draw: _Draw) -> list[Booking]:
    """``count`` labs starting at one instant (``at``), booked ``booked_ahead_minutes`` ahead."""
    start = draw.moment("at", "09:00")
    minutes = draw.minutes()
    return [draw.booking(start, draw.booked_ahead(start), minutes) for _ in range(draw.count())]


def _office_hours(spec: Mapping[str, Any], draw: _Draw) -> list[Booking]:
    """Starts over working hours with a morning and an afternoon peak, on quarter hours;
    weekends weighted by ``weekend_factor``; ``asap_share`` of them ASAP at their start."""
    open_h, close_h = spec.get("hours", (8, 18))
    days = [draw.start.date() + timedelta(days=d) for d in range(max(1, math.ceil((draw.end - draw.start) / timedelta(days=1))))]
    weekend = float(spec.get("weekend_factor", 0.1))
    day_weights = [weekend if day.weekday() >= 5 else 1.0 for day in days]
    asap_share = float(spec.get("asap_share", 0.0))
    made: list[Booking] = []
    for _ in range(draw.count()):
        day = draw.rng.choices(days, weights=day_weights)[0]
        peak = draw.rng.choice((open_h + (close_h - open_h) * 0.25, open_h + (close_h - open_h) * 0.65))
        hour = min(max(draw.rng.gauss(peak, (close_h - open_h) / 6), open_h), close_h - 0.25)
        quarter = round(hour * 4) / 4
        start = datetime(day.year, day.month, day.day, tzinfo=draw.start.tzinfo) + timedelta(hours=quarter)
        minutes = draw.minutes()
        if start + timedelta(minutes=minutes) > draw.end or start < draw.start:
            continue
        if draw.rng.random() < asap_share:
            made.append(draw.booking(None, start, minutes))
        else:
            made.append(draw.booking(start, draw.booked_ahead(start), minutes))
    return made


def _asap_burst(spec: Mapping[str, Any], draw: _Draw) -> list[Booking]:
    """``count`` ASAP requests within ``spread_minutes`` after ``at`` (a class told "start now")."""
    at = draw.moment("at", "13:00")
    spread = float(spec.get("spread_minutes", 5))
    return [draw.booking(None, at + timedelta(seconds=round(60 * draw.rng.uniform(0, spread))), draw.minutes())
            for _ in range(draw.count())]


def _uniform(spec: Mapping[str, Any], draw: _Draw) -> list[Booking]:
    """Starts uniform over ``[from, until)`` on 5-minute marks (a background load)."""
    first, last = draw.moment("from", 0), draw.moment("until", draw.end)
    span = max((last - first) / timedelta(minutes=5), 1)
    made = []
    for _ in range(draw.count()):
        start = first + timedelta(minutes=5 * int(draw.rng.random() * span))
        made.append(draw.booking(start, draw.booked_ahead(start), draw.minutes()))
    return made


SHAPES: dict[str, Shape] = {
    "exam_wave": _exam_wave,
    "office_hours": _office_hours,
    "asap_burst": _asap_burst,
    "uniform": _uniform,
}


def generate(spec: Mapping[str, Any], *, start: datetime, end: datetime, seed: int, index: int,
             definitions: list[str], scale: float = 1.0) -> list[Booking]:
    """The bookings of one generator shape (deterministic for ``(seed, index, spec)``)."""
    if not isinstance(spec, Mapping) or spec.get("shape") not in SHAPES:
        raise WorkloadError(f"generate[{index}]: shape must be one of {sorted(SHAPES)}")
    prefix = str(spec.get("prefix") or f"{spec['shape']}{index}")
    draw = _Draw(random.Random(f"{seed}:{index}:{spec['shape']}"), start, end, definitions, prefix, spec, scale)
    return SHAPES[str(spec["shape"])](spec, draw)
