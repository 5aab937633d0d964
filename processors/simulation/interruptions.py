"""Labs cut short: who ended a lab that was ready before its booked end (SPEC §5, §9).

A lab's *usable life* ends at the first of ``StopRequested``, ``CollectionStarted`` or
``InstanceTerminated`` after it became READY. When that happens before ``timeslot_end``
the cause says whose doing it was:

- ``user``: the user or their service ended it (``session_ended``, ``lds.session.ended``,
  a stop/collect/cancel through the API by a ``user:``/``service:`` caller);
- ``no_show``: the READY watchdog stopped a lab nobody logged in to (nothing was cut);
- ``admin``: an admin ended it, or it was left on a worker an admin drained with a timeout
  (``drain_timeout`` on a worker whose ``DrainingStarted`` an ``admin:`` actor recorded);
- ``system``: everything else — the autoscaler's drain timeout, a lost worker, a stuck
  state. These are the ``interrupted`` KPI: SPEC §5 says they must never happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

_MINUTE = timedelta(minutes=1)
_USER_CAUSES = frozenset({"session_ended", "lds.session.ended"})
_USER_ACTORS = ("user:", "service:", "grader:")


@dataclass(frozen=True)
class LabEnd:
    """The first event that ended a ready lab's usable life."""

    at: datetime
    cause: str  # the stop reason, collection trigger or termination reason
    actor: str
    worker_drained_by: str | None = None  # the actor of the worker's current drain, if any


def classify(end: LabEnd) -> str:
    """``user``, ``no_show``, ``admin`` or ``system`` (see the module's docstring)."""
    if end.cause == "no_show":
        return "no_show"
    if end.cause in _USER_CAUSES or end.actor.startswith(_USER_ACTORS):
        return "user"
    if end.actor.startswith("admin:") or end.cause in ("admin", "admin_request"):
        return "admin"
    if end.cause == "drain_timeout" and (end.worker_drained_by or "").startswith("admin:"):
        return "admin"
    return "system"


@dataclass
class Tally:
    count: int = 0
    minutes: float = 0.0

    def add(self, minutes: float) -> None:
        self.count += 1
        self.minutes += minutes

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "minutes": round(self.minutes, 1)}


def interruptions(labs: Iterable[tuple[datetime, LabEnd | None]]) -> dict[str, Any]:
    """Fold ``(booked end, first end after READY)`` per ready lab into the KPI:
    ``interrupted`` (by the system), ``interrupted_by_admin`` and the causes of both."""
    system, admin = Tally(), Tally()
    causes: dict[str, int] = {}
    for booked_end, end in labs:
        if end is None or end.at >= booked_end:
            continue
        kind = classify(end)
        if kind not in ("system", "admin"):
            continue
        (system if kind == "system" else admin).add((booked_end - end.at) / _MINUTE)
        key = f"{kind}:{end.cause}"
        causes[key] = causes.get(key, 0) + 1
    return {"interrupted": system.to_dict(), "interrupted_by_admin": admin.to_dict(),
            "interrupted_causes": dict(sorted(causes.items()))}
