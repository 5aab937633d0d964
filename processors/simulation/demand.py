"""The recorded demand of an event log, as a workload (``lablet replay``, SPEC §9).

From a real store's log it keeps what the users and the exam systems did, not what the
system did about it:

- each ``InstanceRequested``: when, which definition (its requirements become the
  replayed definition's profile), the timeslot, the owner;
- the user's behaviour: login delay after the lab was ready (or the slot began), no-show
  (READY but never logged in), early finish (a session ended or a stop/collection by the
  user before the timeslot's end);
- the worker templates as they were registered.

Instances cancelled before their lab was ready are left out (counted in ``skipped``): a
replay cannot know when the user would cancel under another policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.instance import LabletInstance
from domain.worker_template import WorkerTemplate
from processors.simulation.workload import Booking, CloudProfile, DefinitionProfile, Workload
from projections.events import StoredEvent

_MINUTE = timedelta(minutes=1)
SYSTEM_TRIGGERS = frozenset({"timeslot_end", "no_show", "graded", "grading_failed", "worker_lost", "drain_timeout"})


@dataclass
class _Seen:
    requested: LabletInstance.InstanceRequested
    at: datetime
    ready_at: datetime | None = None
    login_at: datetime | None = None
    finish_at: datetime | None = None
    cancelled_early: bool = False


@dataclass
class RecordedDemand:
    workload: Workload
    skipped: int
    first: datetime
    last: datetime
    notes: list[str] = field(default_factory=list)


def workload_from_log(events: Iterable[StoredEvent], *, name: str = "replay", seed: int = 0,
                      tail: timedelta = timedelta(hours=2)) -> RecordedDemand:
    seen: dict[str, _Seen] = {}
    templates: dict[str, WorkerTemplate] = {}
    first: datetime | None = None
    last: datetime | None = None
    for stored in events:
        event = stored.event
        at = event.timestamp
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        if isinstance(event, WorkerTemplate.Event):
            templates[stored.stream_id] = event.mutate(templates.get(stored.stream_id))
            continue
        if not isinstance(event, LabletInstance.Event):
            continue
        if isinstance(event, LabletInstance.InstanceRequested):
            seen[stored.stream_id] = _Seen(event, at)
            continue
        facts = seen.get(stored.stream_id)
        if facts is None:
            continue
        if isinstance(event, LabletInstance.InstanceReady) and facts.ready_at is None:
            facts.ready_at = at
        elif isinstance(event, LabletInstance.UserLoggedIn) and facts.login_at is None:
            facts.login_at = at
        elif isinstance(event, (LabletInstance.CollectionStarted, LabletInstance.StopRequested)):
            trigger = getattr(event, "trigger", None) or getattr(event, "reason", "")
            if facts.login_at is not None and facts.finish_at is None and trigger not in SYSTEM_TRIGGERS:
                facts.finish_at = at
        elif isinstance(event, LabletInstance.InstanceTerminated):
            if facts.ready_at is None and event.reason == "cancelled":
                facts.cancelled_early = True
    if first is None or last is None:
        raise ValueError("the event log is empty: no demand to replay")
    profiles: dict[tuple[str, str], DefinitionProfile] = {}
    bookings: list[Booking] = []
    skipped = 0
    for number, facts in enumerate(seen.values()):
        if facts.cancelled_early:
            skipped += 1
            continue
        request = facts.requested
        profile = _profile(request, profiles)
        start = request.timeslot_start
        begins = start or facts.at
        minutes = max(1, round((request.timeslot_end - begins) / _MINUTE))
        login_after = 2.0
        if facts.login_at is not None and facts.ready_at is not None:
            login_after = max((facts.login_at - max(facts.ready_at, start or facts.ready_at)) / _MINUTE, 0.0)
        finish_after = None
        if facts.finish_at is not None and facts.login_at is not None:
            finish_after = round(max((facts.finish_at - facts.login_at) / _MINUTE, 0.1), 3)
        bookings.append(Booking(
            id=f"r{number:06d}", at=facts.at, definition=profile.name, minutes=minutes, start=start,
            owner=request.owner_id, no_show=facts.ready_at is not None and facts.login_at is None,
            login_after=round(login_after, 3), finish_after=finish_after,
        ))
    start_at = first.replace(minute=0, second=0, microsecond=0)
    end_at = max([last, *(b.end for b in bookings)]) + tail
    template_dicts = tuple(t.spec.to_dict() for t in templates.values() if not t.removed) or None
    workload = Workload(name=name, start=start_at, end=end_at, bookings=tuple(sorted(bookings, key=lambda b: (b.at, b.id))),
                        definitions=tuple(profiles.values()), cloud=CloudProfile(), templates=template_dicts,
                        seed=seed, description=f"recorded demand: {len(bookings)} requests")
    return RecordedDemand(workload, skipped, first, last)


def _profile(request: Any, profiles: dict[tuple[str, str], DefinitionProfile]) -> DefinitionProfile:
    key = (request.definition_name, request.definition_version)
    found = profiles.get(key)
    if found is not None:
        return found
    r = request.requirements
    taken = {p.name for p in profiles.values()}
    name = request.definition_name if request.definition_name not in taken else \
        f"{request.definition_name}-{request.definition_version}"
    profile = DefinitionProfile(
        name=name, cpu_cores=r["cpu_cores"], memory_gb=r["memory_gb"], storage_gb=r["storage_gb"],
        node_count=max(1, int(r["node_count"])), ports=tuple(r.get("port_names") or ("serial_1",)),
        license_affinity=tuple(r.get("license_affinity") or ("PERSONAL", "ENTERPRISE")),
        max_duration_minutes=int(r.get("max_duration_minutes") or 240) or 240,
        grading=bool(request.grading_enabled),
    )
    profiles[key] = profile
    return profile
