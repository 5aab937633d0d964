"""Read model of lablet instances: one document per instance, for lists, filters and gauges.

The document mirrors the aggregate (``instance_document`` builds the same shape from a
``LabletInstance``, which is how ``state?at=`` answers), plus who requested it
(``requested_by``, the first event's actor: services see what they requested) and the
effective booking window ``slot_start``/``slot_end`` (ASAP counts from the request), which
the time-range filter reads. Times are stored as fixed-width UTC ISO strings, so the
``slot_start`` index sorts chronologically on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from domain.instance import InstanceState, LabletInstance
from projections.dispatch import ByEventClass
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Document, Page, ReadModelStore, ReadModelTx, Table, decode_cursor, encode_cursor
from projections.readmodels.timestamps import iso

INSTANCES = Table(
    "instances",
    {
        "state": str,
        "owner_id": str,
        "requested_by": str,
        "worker_id": str,
        "definition_name": str,
        "slot_start": str,
        "reservation_id": str,
    },
)
ORDER = "slot_start"  # lists are in booking order; ties by id
SCAN_BATCH = 500

I = LabletInstance  # noqa: E741 - short alias for the event classes below

# The state each event leaves the instance in (events not listed keep the state).
STATE_AFTER: dict[type, InstanceState] = {
    I.InstanceScheduled: InstanceState.SCHEDULED,
    I.InstanceRequeued: InstanceState.PENDING,
    I.InstantiationStarted: InstanceState.INSTANTIATING,
    I.InstanceReady: InstanceState.READY,
    I.UserLoggedIn: InstanceState.RUNNING,
    I.InstanceRestarted: InstanceState.RUNNING,
    I.CollectionStarted: InstanceState.COLLECTING,
    I.GradingStarted: InstanceState.GRADING,
    I.GradingCompleted: InstanceState.STOPPING,
    I.GradingFailed: InstanceState.STOPPING,
    I.StopRequested: InstanceState.STOPPING,
    I.InstanceStopped: InstanceState.STOPPED,
    I.InstanceArchived: InstanceState.ARCHIVED,
    I.InstanceTerminated: InstanceState.TERMINATED,
}


# Leaves that ``_json`` returns as they are, tested by exact class first (most values).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _json(value: Any) -> Any:
    if value.__class__ in _PLAIN:
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def instance_document(instance: LabletInstance, *, requested_by: str) -> Document:
    """The read-model document of ``instance`` as the aggregate sees it (without ``position``)."""
    requested_at = instance.created_on
    start = instance.timeslot_start or requested_at
    return {
        "id": instance.id,
        "state": instance.state.value,
        "definition_name": instance.definition_name,
        "definition_version": instance.definition_version,
        "owner_id": instance.owner_id,
        "requested_by": requested_by,
        "reservation_id": instance.reservation_id,
        "timeslot_start": iso(instance.timeslot_start),
        "timeslot_end": iso(instance.timeslot_end),
        "slot_start": iso(start),
        "slot_end": iso(instance.timeslot_end),
        "requirements": instance.requirements.to_dict(),
        "grading_enabled": instance.grading_enabled,
        "worker_id": instance.worker_id,
        "allocated_ports": dict(instance.allocated_ports),
        "hold_start": iso(instance.hold_start),
        "hold_end": iso(instance.hold_end),
        "placement_decision_id": instance.placement_decision_id,
        "cml_lab_id": instance.cml_lab_id,
        "user_session": _json(instance.user_session),
        "grading_session": _json(instance.grading_session),
        "score_report": instance.score_report.to_dict() if instance.score_report else None,
        "retry_count": instance.retry_count,
        "instantiation_attempt": instance.instantiation_attempt,
        "last_error": instance.last_error,
        "last_placement_failure": instance.last_placement_failure,
        "lab_yaml_uri": instance.lab_yaml_uri,
        "stop_reason": instance.stop_reason,
        "termination_reason": instance.termination_reason,
        "phase_times": {k: iso(v) for k, v in instance.phase_times.items()},
        "requested_at": iso(requested_at),
        "updated_at": iso(instance.modified_on),
        "version": instance.version,
    }


class InstancesProjection(Projection):
    name = "instances"
    version = 3  # 3: reservation_id indexed
    rebuild_weight = 1.3
    tables = (INSTANCES,)
    handled_events = (LabletInstance.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        # Dict hits, not isinstance: the library's event metaclass makes each test slow.
        role = ROLE[event.__class__]
        if role is None:
            return
        if role == "requested":
            doc = self._requested(stored, event)
        else:
            found = tx.get(INSTANCES.name, stored.stream_id)
            if found is None:  # cannot happen in a consistent log; never fail the runner for it
                return
            doc = found
            self._apply(event, doc)
        doc["updated_at"] = iso(event.timestamp)
        doc["version"] = stored.version
        doc["position"] = stored.position
        tx.put(INSTANCES.name, stored.stream_id, doc)

    @staticmethod
    def _requested(stored: StoredEvent, event: LabletInstance.InstanceRequested) -> Document:
        start = event.timeslot_start or event.timestamp
        return {
            "id": stored.stream_id,
            "state": InstanceState.PENDING.value,
            "definition_name": event.definition_name,
            "definition_version": event.definition_version,
            "owner_id": event.owner_id,
            "requested_by": event.actor,
            "reservation_id": event.reservation_id,
            "timeslot_start": iso(event.timeslot_start),
            "timeslot_end": iso(event.timeslot_end),
            "slot_start": iso(start),
            "slot_end": iso(event.timeslot_end),
            "requirements": _json(event.requirements),
            "grading_enabled": event.grading_enabled,
            "worker_id": None,
            "allocated_ports": {},
            "hold_start": None,
            "hold_end": None,
            "placement_decision_id": None,
            "cml_lab_id": None,
            "user_session": None,
            "grading_session": None,
            "score_report": None,
            "retry_count": 0,
            "instantiation_attempt": 0,
            "last_error": None,
            "last_placement_failure": None,
            "lab_yaml_uri": None,
            "stop_reason": None,
            "termination_reason": None,
            "phase_times": {InstanceState.PENDING.value: iso(event.timestamp)},
            "requested_at": iso(event.timestamp),
        }

    @staticmethod
    def _apply(event: LabletInstance.Event, doc: Document) -> None:
        """What each event's ``apply`` does to the aggregate, done to the document."""
        change = CHANGES[event.__class__]
        if change is not None:
            change(event, doc)
        state = STATE_VALUE_AFTER[event.__class__]
        if state is not None:
            doc["state"] = state
            # The document is this batch's own (projections/batch.py): changed in place.
            doc.setdefault("phase_times", {})[state] = iso(event.timestamp)


# -- what each event changes in the document (one function per event class) --------------
Change = Callable[[Any, Document], None]


def _scheduled(event: Any, doc: Document) -> None:
    doc.update(worker_id=event.worker_id, allocated_ports=dict(event.allocated_ports),
               hold_start=iso(event.hold_start), hold_end=iso(event.hold_end),
               placement_decision_id=event.decision_id)


def _extended(event: Any, doc: Document) -> None:
    doc.update(timeslot_end=iso(event.timeslot_end), slot_end=iso(event.timeslot_end))
    if event.hold_end is not None:
        doc["hold_end"] = iso(event.hold_end)


def _instantiation_started(event: Any, doc: Document) -> None:
    doc["instantiation_attempt"] = event.attempt
    if event.lab_yaml_uri is not None:
        doc["lab_yaml_uri"] = event.lab_yaml_uri


def _set(**fields: Callable[[Any], Any]) -> Change:
    """A change that sets each field to ``fields[name](event)``."""
    items = tuple(fields.items())

    def change(event: Any, doc: Document) -> None:
        for name, value_of in items:
            doc[name] = value_of(event)

    return change


def _const(value: Any) -> Callable[[Any], Any]:
    return lambda _event: value


CHANGES: ByEventClass[Change | None] = ByEventClass({
    I.PlacementDecided: _set(last_placement_failure=_const(None)),
    I.PlacementFailed: _set(last_placement_failure=lambda e: e.summary),
    I.InstanceScheduled: _scheduled,
    I.InstanceMoved: _set(worker_id=lambda e: e.worker_id, allocated_ports=lambda e: dict(e.allocated_ports)),
    I.InstanceRequeued: _set(worker_id=_const(None), allocated_ports=lambda _e: {}, hold_start=_const(None),
                             hold_end=_const(None), placement_decision_id=_const(None)),
    I.InstanceHoldExtended: _set(hold_end=lambda e: iso(e.hold_end)),
    I.InstanceExtended: _extended,
    I.InstantiationStarted: _instantiation_started,
    I.LabImported: _set(cml_lab_id=lambda e: e.cml_lab_id),
    I.InstantiationFailed: _set(retry_count=lambda e: e.retry_count, last_error=lambda e: e.error),
    I.InstanceReady: _set(user_session=lambda e: _json(e.user_session)),
    I.InstanceRestarted: _set(stop_reason=_const(None)),
    I.GradingStarted: _set(grading_session=lambda e: _json(e.grading_session)),
    I.GradingCompleted: _set(score_report=lambda e: _json(e.score_report), stop_reason=_const("graded")),
    I.GradingFailed: _set(last_error=lambda e: e.reason, stop_reason=_const("grading_failed")),
    I.StopRequested: _set(stop_reason=lambda e: e.reason),
    I.InstanceTerminated: _set(termination_reason=lambda e: e.reason),
}, None)
# What an event class is to an instance document: its creation, a change, or nothing.
ROLE: ByEventClass[str | None] = ByEventClass({I.InstanceRequested: "requested", I.Event: "change"}, None)
# The state value each event class leaves the instance in (None: unchanged).
STATE_VALUE_AFTER: ByEventClass[str | None] = ByEventClass(
    {kind: state.value for kind, state in STATE_AFTER.items()}, None)


class InstanceQueries:
    """Lists and lookups over the instances read model."""

    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def get(self, instance_id: str) -> Document | None:
        return self.store.get(INSTANCES.name, instance_id)

    def count_by_state(self, where: Mapping[str, Any] | None = None) -> dict[str, int]:
        """How many instances are in each state (every state, zeros included), among those
        matching ``where`` (indexed fields, e.g. a caller's ``owner_id`` scope)."""
        scope = dict(where or {})
        return {state.value: self.store.count(INSTANCES.name, {**scope, "state": state.value})
                for state in InstanceState}

    def list(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        time_from: datetime | None = None,
        time_to: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Instances matching ``where`` (indexed fields) whose booking window overlaps
        ``[time_from, time_to)``, in ``slot_start`` order, ``limit`` at a time.

        Raises ``ValueError`` for a cursor this API did not hand out.
        """
        if cursor is not None:
            value, _key = decode_cursor(cursor)
            if not isinstance(value, str):  # a slot_start: anything else never came from us
                raise ValueError(f"invalid cursor {cursor!r}")
        if time_from is None and time_to is None:
            return self.store.query(INSTANCES.name, where=dict(where or {}), order_by=ORDER, limit=limit,
                                    after=cursor)
        return self._overlapping(dict(where or {}), iso(time_from), iso(time_to), limit, cursor)

    def _overlapping(
        self, where: dict[str, Any], low: str | None, high: str | None, limit: int, cursor: str | None
    ) -> Page:
        # Keyset scan in slot_start order: stop at the first slot that starts after the range;
        # skip those that ended before it. The cursor is the last item *returned*, so the
        # next page resumes right after it whatever was skipped.
        found: list[Document] = []
        after = cursor
        while True:
            page = self.store.query(INSTANCES.name, where=where, order_by=ORDER, limit=SCAN_BATCH, after=after)
            for doc in page.items:
                if high is not None and doc["slot_start"] >= high:
                    return Page(found, None)
                if low is not None and doc["slot_end"] <= low:
                    continue
                if len(found) == limit:  # one more exists: hand out a cursor to it
                    last = found[-1]
                    return Page(found, encode_cursor(last["slot_start"], last["id"]))
                found.append(doc)
            if page.next_cursor is None:
                return Page(found, None)
            after = page.next_cursor


PROJECTIONS = (InstancesProjection(),)


#: states whose lab is on CML (or about to be): its hold must not end under it
OVERRUN_STATES = ("INSTANTIATING", "READY", "RUNNING", "COLLECTING", "GRADING", "STOPPING")


def overrunning(queries: InstanceQueries, horizon: datetime) -> list[str]:
    """Ids of active instances whose hold ends before ``horizon`` (the overrun watcher's input)."""
    found: list[str] = []
    cursor: str | None = None
    limit = iso(horizon)
    while True:
        page = queries.list(where={"state": list(OVERRUN_STATES)}, limit=500, cursor=cursor)
        found.extend(doc["id"] for doc in page.items if doc.get("hold_end") and doc["hold_end"] < limit)
        if not page.next_cursor:
            return found
        cursor = page.next_cursor


def live_bookings(queries: InstanceQueries, subject: str, members: list[str]) -> list[tuple[str, datetime, datetime]]:
    """``(id, slot_start, slot_end)`` of the live bookings a quota subject already has
    (``owner:<id>``, ``service:<subject>``, ``group:<name>`` = its members'): seeds its usage."""
    kind, _, name = subject.partition(":")
    if kind == "service":
        scopes = [{"requested_by": f"service:{name}"}]
    elif kind == "group":
        scopes = [{"owner_id": member} for member in members]
    else:
        scopes = [{"owner_id": name}]
    live = [s.value for s in InstanceState if s.value not in ("ARCHIVED", "TERMINATED")]
    found: list[tuple[str, datetime, datetime]] = []
    for scope in scopes:
        cursor: str | None = None
        while True:
            page = queries.list(where={**scope, "state": live}, limit=500, cursor=cursor)
            found.extend((doc["id"], datetime.fromisoformat(doc["slot_start"]), datetime.fromisoformat(doc["slot_end"]))
                         for doc in page.items)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    return found


def placed_on(queries: InstanceQueries, worker_id: str) -> list[str]:
    """Ids of the live instances placed on ``worker_id`` (the lab reconciler's owners)."""
    live = [s.value for s in InstanceState if s.value not in ("PENDING", "ARCHIVED", "TERMINATED")]
    found: list[str] = []
    cursor: str | None = None
    while True:
        page = queries.list(where={"worker_id": worker_id, "state": live}, limit=500, cursor=cursor)
        found.extend(doc["id"] for doc in page.items)
        if not page.next_cursor:
            return found
        cursor = page.next_cursor
