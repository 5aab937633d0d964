"""Quotas (``/quotas``): admins set them; every booking they apply to is counted and checked.

``charge`` runs inside a booking command (an instance request, a class, an extension): it
reads the policy and the usage streams of the booking's subjects into the command's
``Workspace``, refuses with ``QuotaExceeded`` (409, with what remains) when a limit would
be passed, and otherwise appends ``BookingCounted`` there, saved atomically with the
booking. Racing bookings of one owner therefore conflict on the owner's usage stream and
the loser is re-checked against the winner's booking (see ``domain/quota.py``).

A booking counts from its slot start (the request time for ASAP) to its timeslot end, and
stops counting when the lab ends earlier (archived or terminated). Usage streams are
opened on the first booking a quota applies to, seeded with the subject's live bookings
from the instances read model (so a quota set on a busy owner counts what it already has).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.context import CommandContext
from domain.errors import NotFound
from domain.instance import LabletInstance
from domain.quota import (
    Booking,
    QuotaExceeded,
    QuotaLimits,
    QuotaPolicy,
    QuotaUsage,
    day_of,
    days_of,
    hours_on,
    peak_concurrent,
    subject_key,
)
from processors.aggregates import load_or_none
from processors.commands.workspace import Store, Workspace
from processors.retry import retry_on_conflict

#: ``subject -> [(instance_id, start, end)]`` of its live bookings (seeds a new usage stream)
ExistingBookings = Callable[[str, list[str]], list[tuple[str, datetime, datetime]]]


class QuotaService:
    def __init__(self, store: Store, existing: ExistingBookings | None = None) -> None:
        self.store = store
        self.existing = existing or (lambda subject, members: [])

    # -- admins ---------------------------------------------------------------------------
    def policy(self) -> QuotaPolicy | None:
        return load_or_none(self.store, QuotaPolicy.stream_id_for(), QuotaPolicy)

    def set(self, kind: str, name: str, limits: QuotaLimits, ctx: CommandContext, *,
            members: list[str] | None = None) -> tuple[bool, int]:
        subject = subject_key(kind, name)

        def attempt() -> tuple[bool, int]:
            policy = self.policy() or QuotaPolicy.open(ctx)
            changed = policy.set(subject, limits, ctx, members=members)
            return changed, self.store.save(policy)

        return retry_on_conflict(attempt)

    def remove(self, kind: str, name: str, ctx: CommandContext) -> int:
        subject = subject_key(kind, name)

        def attempt() -> int:
            policy = self.policy()
            if policy is None or not policy.remove(subject, ctx):
                raise NotFound(f"no quota for {subject}")
            return self.store.save(policy)

        return retry_on_conflict(attempt)

    def seed(self, entries: list[dict[str, Any]], ctx: CommandContext) -> list[str]:
        """The config file's quotas, only while no admin has set any (admin edits win)."""
        if self.policy() is not None or not entries:
            return []
        policy = QuotaPolicy.open(ctx)
        for entry in entries:
            subject = subject_key(str(entry.get("kind")), str(entry.get("name")))
            limits = QuotaLimits(entry.get("max_concurrent_labs"), entry.get("max_lab_hours_per_day"))
            policy.set(subject, limits, ctx, members=entry.get("members"))
        self.store.save(policy)
        return sorted(policy.limits)

    # -- bookings ---------------------------------------------------------------------------
    def charge(self, workspace: Workspace, bookings: list[LabletInstance], service: str | None,
               ctx: CommandContext) -> None:
        """Count new bookings (instances in ``workspace``, not saved yet) against their quotas.

        ``service``: the subject of the service that requests them (its own quota applies)."""
        policy = self.policy()
        if policy is None or not policy.limits:
            return
        by_subject: dict[str, list[LabletInstance]] = {}
        for instance in bookings:
            for subject in policy.subjects_for(instance.owner_id, service):
                by_subject.setdefault(subject, []).append(instance)
        for subject, instances in sorted(by_subject.items()):
            limits = policy.limits[subject]
            usage = self._usage(workspace, subject, policy, ctx)
            new_ids = {i.id for i in instances}
            first = min(_window(i, ctx)[0] for i in instances)
            current = [b for b in self._effective(workspace, usage, first) if b.instance_id not in new_ids]
            for instance in instances:
                start, end = _window(instance, ctx)
                booking = Booking(instance.id, start, end)
                _check(subject, limits, current, booking)
                current.append(booking)
                usage.count(instance.id, start, end, ctx)

    def charge_extension(self, workspace: Workspace, instance: LabletInstance, new_end: datetime,
                         ctx: CommandContext) -> None:
        """The lab's booking grows to ``new_end``: check and count it like a new booking."""
        policy = self.policy()
        if policy is None:
            return
        service = instance_service(workspace, instance)
        start = _window(instance, ctx)[0]
        for subject in policy.subjects_for(instance.owner_id, service):
            usage = self._usage(workspace, subject, policy, ctx)
            current = [b for b in self._effective(workspace, usage, start) if b.instance_id != instance.id]
            _check(subject, policy.limits[subject], current, Booking(instance.id, start, new_end))
            usage.count(instance.id, start, new_end, ctx)

    # -- the owner's view -------------------------------------------------------------------
    def status(self, subjects: list[str], at: datetime) -> list[dict[str, Any]]:
        """Limits, use now and today, and what remains, for each subject that has a quota."""
        policy = self.policy()
        if policy is None:
            return []
        workspace = Workspace(self.store)
        found = []
        for subject in subjects:
            limits = policy.limits.get(subject)
            if limits is None:
                continue
            usage = load_or_none(workspace, QuotaUsage.stream_id_for(subject), QuotaUsage)
            if usage is not None:
                current = self._effective(workspace, usage, day_of(at))
            else:  # nothing counted yet: the live bookings the first counted one will be checked against
                current = [Booking(instance_id, start, end) for instance_id, start, end
                           in self.existing(subject, policy.members.get(subject, [])) if end > day_of(at)]
            now_labs = sum(1 for b in current if b.start <= at < b.end)
            today = hours_on(current, day_of(at))
            found.append({
                "quota": subject, "limits": limits.to_dict(), "members": policy.members.get(subject),
                "concurrent_labs_now": now_labs, "lab_hours_today": round(today, 3),
                "remaining": _remaining(limits, now_labs, today),
            })
        return found

    def subjects_of(self, role: str, subject: str) -> list[str]:
        """The quotas that apply to a caller's own bookings (for ``GET /quotas/me``)."""
        policy = self.policy()
        if policy is None:
            return []
        if role == "service":
            return policy.subjects_for("", subject)
        return policy.subjects_for(subject, None)

    # -- internals ----------------------------------------------------------------------------
    def _usage(self, workspace: Workspace, subject: str, policy: QuotaPolicy, ctx: CommandContext) -> QuotaUsage:
        usage = load_or_none(workspace, QuotaUsage.stream_id_for(subject), QuotaUsage)
        if usage is None:
            usage = QuotaUsage.open(subject, ctx)
            for instance_id, start, end in self.existing(subject, policy.members.get(subject, [])):
                usage.count(instance_id, start, end, ctx)
            workspace.add(usage)
        return usage

    @staticmethod
    def _effective(workspace: Workspace, usage: QuotaUsage | None, since: datetime) -> list[Booking]:
        """The usage's bookings that reach past ``since``'s day, each ending when its lab did."""
        if usage is None:
            return []
        horizon = day_of(since)
        found = []
        for booking in usage.bookings.values():
            if booking.end <= horizon:
                continue
            instance = load_or_none(workspace, booking.instance_id, LabletInstance)
            end = booking.end
            if instance is not None and not instance.is_live:
                ended = instance.entered_at(instance.state)
                end = min(end, ended) if ended else end
            if end > booking.start:
                found.append(Booking(booking.instance_id, booking.start, end))
        return found


def instance_service(workspace: Workspace, instance: LabletInstance) -> str | None:
    """The service that requested the instance (its actor ``service:<subject>``), if one did."""
    actor = str(getattr(instance, "requested_by", "") or "")
    if not actor:
        try:
            events = workspace.store.read_stream(instance.id)  # type: ignore[attr-defined]
            actor = events[0].event.actor if events else ""
        except (AttributeError, NotFound):
            actor = ""
    return actor.split(":", 1)[1] if actor.startswith("service:") else None


def _window(instance: LabletInstance, ctx: CommandContext) -> tuple[datetime, datetime]:
    start = instance.timeslot_start or getattr(instance, "created_on", None) or ctx.at
    return start, instance.timeslot_end


def _check(subject: str, limits: QuotaLimits, current: list[Booking], booking: Booking) -> None:
    if limits.max_concurrent_labs is not None:
        peak = peak_concurrent(current, booking.start, booking.end)
        if peak + 1 > limits.max_concurrent_labs:
            raise QuotaExceeded(
                f"{subject} may hold {limits.max_concurrent_labs} lab(s) at once; {peak} already overlap "
                f"{booking.start.isoformat()} – {booking.end.isoformat()}",
                subject=subject, limits=limits,
                remaining={"concurrent_labs": max(0, limits.max_concurrent_labs - peak)},
            )
    if limits.max_lab_hours_per_day is not None:
        for day in days_of(booking.start, booking.end):
            used = hours_on(current, day)
            wanted = hours_on([booking], day)
            if used + wanted > limits.max_lab_hours_per_day + 1e-9:
                left = max(0.0, limits.max_lab_hours_per_day - used)
                raise QuotaExceeded(
                    f"{subject} may book {limits.max_lab_hours_per_day} lab-hours a day; on {day.date()} "
                    f"{used:.2f} are booked and this needs {wanted:.2f}",
                    subject=subject, limits=limits,
                    remaining={"lab_hours": round(left, 3), "day": day.date().isoformat()},
                )


def _remaining(limits: QuotaLimits, now_labs: int, today: float) -> dict[str, Any]:
    remaining: dict[str, Any] = {}
    if limits.max_concurrent_labs is not None:
        remaining["concurrent_labs"] = max(0, limits.max_concurrent_labs - now_labs)
    if limits.max_lab_hours_per_day is not None:
        remaining["lab_hours_today"] = round(max(0.0, limits.max_lab_hours_per_day - today), 3)
    return remaining

