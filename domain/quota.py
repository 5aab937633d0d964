"""Quotas: how many labs at once and how many lab-hours a day an owner, a group (a course) or
a service may book.

Two aggregates:

- ``QuotaPolicy`` (one stream, ``named_stream_id("QuotaPolicy", "default")``): the limits admins
  set, per subject ``owner:<id>``, ``group:<name>`` (with its members) and ``service:<subject>``;
- ``QuotaUsage`` (one stream per subject): the bookings counted against it. Every booking a
  quota applies to appends ``BookingCounted`` to the usage streams of its subjects **in the
  same atomic save as the instance**, at the version the check read: two bookings racing for
  the last slot of one owner collide on that stream (optimistic concurrency), the loser
  re-reads, sees the winner's booking and is refused. So a quota holds under concurrent
  bookings without a lock.

Pure functions count what a set of bookings uses: the peak number of labs at once over a
window, and lab-hours per UTC day. A booking stops counting when its lab ends early (the
caller passes the end it really has, e.g. the termination time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate, named_stream_id
from domain.context import CommandContext
from domain.errors import Conflict, InvalidInput

KINDS = ("owner", "group", "service")
POLICY_SCOPE = "default"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class QuotaLimits:
    """``None``: no limit of that kind."""

    max_concurrent_labs: int | None = None
    max_lab_hours_per_day: float | None = None

    def __post_init__(self) -> None:
        if self.max_concurrent_labs is not None and (
                isinstance(self.max_concurrent_labs, bool) or not isinstance(self.max_concurrent_labs, int)
                or self.max_concurrent_labs < 0):
            raise InvalidInput("max_concurrent_labs", "must be a whole number >= 0 or null")
        if self.max_lab_hours_per_day is not None and (
                isinstance(self.max_lab_hours_per_day, bool)
                or not isinstance(self.max_lab_hours_per_day, (int, float)) or self.max_lab_hours_per_day < 0):
            raise InvalidInput("max_lab_hours_per_day", "must be a number >= 0 or null")

    def to_dict(self) -> dict[str, Any]:
        return {"max_concurrent_labs": self.max_concurrent_labs, "max_lab_hours_per_day": self.max_lab_hours_per_day}


def subject_key(kind: str, name: str) -> str:
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}")
    if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable():
        raise InvalidInput("name", "must be 1-200 printable characters")
    return f"{kind}:{name}"


class QuotaExceeded(Conflict):
    """A booking would go over a quota (409); says which and what remains."""

    title = "Quota exceeded"

    def __init__(self, detail: str, *, subject: str, limits: QuotaLimits, remaining: dict[str, Any]) -> None:
        super().__init__(detail)
        self.subject = subject
        self.limits = limits
        self.remaining = remaining

    def problem_fields(self) -> dict[str, Any]:
        return {"quota": self.subject, "limits": self.limits.to_dict(), "remaining": self.remaining}


class QuotaPolicy(LrmAggregate):
    class QuotaPolicyOpened(LrmAggregate.Created):
        scope: str

        def apply(self, aggregate: QuotaPolicy) -> None:
            aggregate.limits = {}
            aggregate.members = {}

    class QuotaSet(LrmAggregate.Event):
        subject: str
        limits: dict[str, Any]
        members: list[str] | None  # a group's owners

        def apply(self, aggregate: QuotaPolicy) -> None:
            aggregate.limits[self.subject] = QuotaLimits(**self.limits)
            if self.members is not None:
                aggregate.members[self.subject] = list(self.members)

    class QuotaRemoved(LrmAggregate.Event):
        subject: str

        def apply(self, aggregate: QuotaPolicy) -> None:
            aggregate.limits.pop(self.subject, None)
            aggregate.members.pop(self.subject, None)

    if TYPE_CHECKING:
        limits: dict[str, QuotaLimits]
        members: dict[str, list[str]]

    @staticmethod
    def stream_id_for(scope: str = POLICY_SCOPE) -> str:
        return named_stream_id("QuotaPolicy", scope)

    @classmethod
    def open(cls, ctx: CommandContext, scope: str = POLICY_SCOPE) -> QuotaPolicy:
        return cls._create_with(cls.QuotaPolicyOpened, ctx, id=cls.stream_id_for(scope), scope=scope)

    def set(self, subject: str, limits: QuotaLimits, ctx: CommandContext, *, members: list[str] | None = None) -> bool:
        """Record the limits; False (nothing recorded) when they are already these."""
        kind = subject.split(":", 1)[0]
        if kind == "group" and members is None:
            members = self.members.get(subject, [])
        if kind != "group" and members is not None:
            raise InvalidInput("members", "only a group has members")
        if members is not None:
            members = sorted(set(members))
        if self.limits.get(subject) == limits and (members is None or self.members.get(subject) == members):
            return False
        self._record(self.QuotaSet, ctx, subject=subject, limits=limits.to_dict(), members=members)
        return True

    def remove(self, subject: str, ctx: CommandContext) -> bool:
        if subject not in self.limits:
            return False
        self._record(self.QuotaRemoved, ctx, subject=subject)
        return True

    def subjects_for(self, owner_id: str, requested_by_service: str | None) -> list[str]:
        """The quotas a booking counts against: a service's own quota for its requests,
        otherwise the owner's and those of every group the owner belongs to."""
        if requested_by_service is not None:
            subject = f"service:{requested_by_service}"
            return [subject] if subject in self.limits else []
        found = [f"owner:{owner_id}"] if f"owner:{owner_id}" in self.limits else []
        found += sorted(s for s, members in self.members.items() if owner_id in members and s in self.limits)
        return found


@dataclass(frozen=True)
class Booking:
    instance_id: str
    start: datetime
    end: datetime


class QuotaUsage(LrmAggregate):
    class QuotaUsageOpened(LrmAggregate.Created):
        subject: str

        def apply(self, aggregate: QuotaUsage) -> None:
            aggregate.subject = self.subject
            aggregate.bookings = {}

    class BookingCounted(LrmAggregate.Event):
        instance_id: str
        start: datetime
        end: datetime

        def apply(self, aggregate: QuotaUsage) -> None:
            aggregate.bookings[self.instance_id] = Booking(self.instance_id, self.start, self.end)

    if TYPE_CHECKING:
        subject: str
        bookings: dict[str, Booking]

    @staticmethod
    def stream_id_for(subject: str) -> str:
        return named_stream_id("QuotaUsage", subject)

    @classmethod
    def open(cls, subject: str, ctx: CommandContext) -> QuotaUsage:
        return cls._create_with(cls.QuotaUsageOpened, ctx, id=cls.stream_id_for(subject), subject=subject)

    def count(self, instance_id: str, start: datetime, end: datetime, ctx: CommandContext) -> None:
        known = self.bookings.get(instance_id)
        if known is not None and known.start == start and known.end == end:
            return
        self._record(self.BookingCounted, ctx, instance_id=instance_id, start=start, end=end)


# -- counting (pure) ------------------------------------------------------------------------
def peak_concurrent(bookings: list[Booking], start: datetime, end: datetime) -> int:
    """The most bookings active at one instant of ``[start, end)``."""
    points: list[tuple[datetime, int]] = []
    for b in bookings:
        if b.start < end and b.end > start:
            points.append((max(b.start, start), 1))
            points.append((b.end, -1))
    peak = running = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):  # ends before starts at one instant
        running += delta
        peak = max(peak, running)
    return peak


def day_of(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def hours_on(bookings: list[Booking], day: datetime) -> float:
    """Lab-hours the bookings use on the UTC day starting at ``day``."""
    end = day + DAY
    total = timedelta(0)
    for b in bookings:
        overlap = min(b.end, end) - max(b.start, day)
        if overlap > timedelta(0):
            total += overlap
    return total.total_seconds() / 3600


def days_of(start: datetime, end: datetime) -> list[datetime]:
    days, day = [], day_of(start)
    while day < end:
        days.append(day)
        day += DAY
    return days
