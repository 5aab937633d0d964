"""Read model of instance timelines: every event about an instance, in log order, with its position.

An event is about an instance when it is on the instance's stream, or when another stream's
event names it: ``instance_id`` in its payload (worker reservations, placement decisions kept
on a stream of their own), a ``decision`` with an ``instance_id``, or a list under a key
ending in ``instance_ids`` (a worker drained, stopped or lost with the lab on it). The log,
not the stream, is the source, because the timeline shows global positions (a stream read
does not return them on every backend).

``describe`` turns a row into one plain-language sentence; it runs at query time, so the
wording can improve without a rebuild.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from domain.instance import LabletInstance
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Page, ReadModelStore, ReadModelTx, Table, decode_cursor
from projections.readmodels.timestamps import iso

TIMELINE = Table("instance_timeline", {"instance_id": str, "position": int})
INSTANCE_PREFIX = f"{LabletInstance.stream_prefix()}-"


def related_instances(stored: StoredEvent, data: Mapping[str, Any]) -> Iterator[str]:
    """The instance ids ``stored`` is about (each once)."""
    seen: set[str] = set()

    def emit(value: Any) -> Iterator[str]:
        if isinstance(value, str) and value.startswith(INSTANCE_PREFIX) and value not in seen:
            seen.add(value)
            yield value

    if stored.stream_id.startswith(INSTANCE_PREFIX):
        yield from emit(stored.stream_id)
        return
    yield from emit(data.get("instance_id"))
    decision = data.get("decision")
    if isinstance(decision, Mapping):
        yield from emit(decision.get("instance_id"))
    for key, value in data.items():
        if key.endswith("instance_ids") and isinstance(value, (list, tuple)):
            for item in value:
                yield from emit(item)


class InstanceTimelineProjection(Projection):
    name = "instance_timeline"
    version = 1
    rebuild_weight = 2.2
    tables = (TIMELINE,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        payload = getattr(event, "payload", None)
        position = stored.position
        if payload is None or position is None:
            return
        data = payload()
        stream_id = stored.stream_id
        # Most events are on an instance's own stream: about that instance only.
        related = [stream_id] if stream_id.startswith(INSTANCE_PREFIX) else list(related_instances(stored, data))
        if not related:
            return
        metadata = getattr(event, "metadata", None) or {}
        occurred_at = iso(event.timestamp)
        for instance_id in related:
            # One literal per row (the shared payload is encoded when the row is written:
            # datetimes become ISO strings then).
            tx.put(TIMELINE.name, f"{instance_id}@{position:016d}", {
                "position": position,
                "stream_id": stream_id,
                "version": stored.version,
                "type": event.__class__.__name__,
                "occurred_at": occurred_at,
                "actor": metadata.get("actor", ""),
                "causation_id": metadata.get("causation_id", ""),
                "correlation_id": metadata.get("correlation_id", ""),
                "data": data,
                "instance_id": instance_id,
            })


# -- plain language ---------------------------------------------------------------------
def _words(name: str) -> str:
    spaced = re.sub(r"(?<!^)(?=[A-Z])", " ", name)
    return spaced[:1].upper() + spaced[1:].lower()


def _ports(ports: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((ports or {}).items())) or "none"


def _slot(d: Mapping[str, Any]) -> str:
    start = d.get("timeslot_start") or "as soon as possible"
    return f"{start} until {d.get('timeslot_end')}"


Describe = Callable[[Mapping[str, Any], Mapping[str, Any]], str]

# type -> sentence from (row, data). The actor is appended by ``describe``.
SENTENCES: dict[str, Describe] = {
    "InstanceRequested": lambda r, d: (
        f"Requested {d.get('definition_name')} {d.get('definition_version')} for {d.get('owner_id')}, "
        f"{_slot(d)}"
    ),
    "PlacementDecided": lambda r, d: (
        f"Placement chose worker {d.get('worker_id') or (d.get('decision') or {}).get('chosen_worker_id')}"
        f" (policy {(d.get('decision') or {}).get('policy', '?')})"
    ),
    "PlacementFailed": lambda r, d: (
        f"No worker could take it, so it stays queued: {d.get('summary') or 'see the decision'}"
    ),
    "InstanceScheduled": lambda r, d: (
        f"Scheduled on worker {d.get('worker_id')}, holding capacity {d.get('hold_start')} to "
        f"{d.get('hold_end')}, ports {_ports(d.get('allocated_ports'))}"
    ),
    "InstanceRequeued": lambda r, d: (
        f"Back in the queue ({d.get('reason')}), left worker {d.get('previous_worker_id')}"
    ),
    "InstanceMoved": lambda r, d: (
        f"Moved from worker {d.get('previous_worker_id')} to {d.get('worker_id')} before instantiation, "
        f"same window, ports {_ports(d.get('allocated_ports'))}: {d.get('reason')}"
    ),
    "InstanceHoldExtended": lambda r, d: f"Hold extended from {d.get('previous_hold_end')} to {d.get('hold_end')}",
    "InstanceExtended": lambda r, d: (
        f"Extended by {d.get('minutes')} min: now ends {d.get('timeslot_end')} (was {d.get('previous_timeslot_end')})"
    ),
    "InstantiationStarted": lambda r, d: f"Instantiation attempt {d.get('attempt')} started",
    "LabImported": lambda r, d: f"Lab imported into CML as {d.get('cml_lab_id')}",
    "LabStarted": lambda r, d: f"Lab {d.get('cml_lab_id')} started on CML",
    "InstantiationFailed": lambda r, d: (
        f"Instantiation attempt {d.get('attempt')} failed: {d.get('error')}"
        + ("; it will be retried" if d.get("will_retry") else "; no retries left")
    ),
    "InstanceReady": lambda r, d: "Lab ready, waiting for the user to log in",
    "UserLoggedIn": lambda r, d: "User logged in" + (" (lab restarted)" if d.get("restart") else "")
    + f" via {d.get('source')}",
    "InstanceRestarted": lambda r, d: "Stopped lab started again",
    "CollectionStarted": lambda r, d: f"Collecting evidence for grading (trigger: {d.get('trigger')})",
    "GradingStarted": lambda r, d: "Sent to the grader",
    "GradingCompleted": lambda r, d: (
        "Graded: {score}/{max_score}, {verdict}".format(
            score=(d.get("score_report") or {}).get("score"),
            max_score=(d.get("score_report") or {}).get("max_score"),
            verdict="passed" if (d.get("score_report") or {}).get("passed") else "not passed",
        )
    ),
    "GradingFailed": lambda r, d: f"Grading failed: {d.get('reason')}",
    "StopRequested": lambda r, d: f"Stop requested ({d.get('reason')})",
    "InstanceStopped": lambda r, d: "Lab stopped on CML; capacity still held",
    "InstanceArchived": lambda r, d: f"Archived: lab wiped from CML, ports {_ports(d.get('released_ports'))} released",
    "InstanceTerminated": lambda r, d: (
        f"Terminated ({d.get('reason')}) from {d.get('previous_state')}"
        + (f", released ports {_ports(d.get('released_ports'))}" if d.get("released_ports") else "")
    ),
    "CapacityReserved": lambda r, d: (
        f"Worker {r.get('stream_id')} reserved capacity {d.get('hold_start')} to {d.get('hold_end')}, "
        f"ports {_ports(d.get('ports'))}"
    ),
    "CapacityReleased": lambda r, d: f"Worker {r.get('stream_id')} released its reservation ({d.get('reason')})",
    "ReservationExtended": lambda r, d: f"Worker {r.get('stream_id')} extended the reservation to {d.get('hold_end')}",
}


def describe(row: Mapping[str, Any]) -> str:
    """One sentence saying what the event means for the instance, and who did it."""
    data = row.get("data") or {}
    sentence = SENTENCES.get(row.get("type", ""))
    try:
        text = sentence(row, data) if sentence else _words(str(row.get("type", "")))
    except Exception:  # noqa: BLE001 - an odd payload must not break a timeline
        text = _words(str(row.get("type", "")))
    actor = row.get("actor")
    return f"{text} (by {actor})" if actor else text


class TimelineQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def of_instance(self, instance_id: str, *, limit: int = 500, cursor: str | None = None) -> Page:
        """The instance's timeline in log order, each row with its ``description``.

        Raises ``ValueError`` for a cursor this API did not hand out.
        """
        if cursor is not None:
            value, _key = decode_cursor(cursor)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                raise ValueError(f"invalid cursor {cursor!r}")  # a position: anything else never came from us
        page = self.store.query(TIMELINE.name, where={"instance_id": instance_id}, order_by="position",
                                limit=limit, after=cursor)
        return Page([{**row, "description": describe(row)} for row in page.items], page.next_cursor)


PROJECTIONS = (InstanceTimelineProjection(),)
