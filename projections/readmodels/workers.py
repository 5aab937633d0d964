"""Read model of workers: state, template snapshot, reservations, and every event (timeline).

Capacity "now" and over a window is computed at query time from the stored reservations
with the domain's ``ReservationLedger``, so it is the same arithmetic the scheduler uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from domain.ledger import Reservation, ReservationLedger
from domain.resources import ZERO, Resources
from domain.worker import Worker, WorkerState
from projections.dispatch import ByEventClass
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import (
    Document,
    Page,
    ReadModelStore,
    ReadModelTx,
    Table,
    decode_cursor,
    encode_cursor,
)
from projections.readmodels.templates import check_key_cursor

WORKERS = Table("workers", {"state": str, "template_name": str, "live": bool})
# Key ``<worker id>/<stream version, zero-padded>`` so key order is stream order.
WORKER_EVENTS = Table("worker_events", {"worker_id": str})

# A template is in use, and a worker's capacity counts, until it is TERMINATED or FAILED.
NOT_LIVE = frozenset({WorkerState.TERMINATED.value, WorkerState.FAILED.value})
SCAN_PAGE = 500

# The state each event leaves the worker in (events not listed keep the state).
STATE_AFTER: dict[type, WorkerState] = {
    Worker.WorkerProvisioningStarted: WorkerState.PROVISIONING,
    Worker.WorkerReady: WorkerState.RUNNING,
    Worker.WorkerProvisioningFailed: WorkerState.FAILED,
    Worker.DrainingStarted: WorkerState.DRAINING,
    Worker.DrainCancelled: WorkerState.RUNNING,
    Worker.WorkerStopping: WorkerState.STOPPING,
    Worker.WorkerStopped: WorkerState.STOPPED,
    Worker.WorkerRestartRequested: WorkerState.PROVISIONING,
    Worker.WorkerTerminated: WorkerState.TERMINATED,
}


def timeline_key(worker_id: str, version: int) -> str:
    return f"{worker_id}/{version:012d}"


class WorkersProjection(Projection):
    name = "workers"
    version = 1
    rebuild_weight = 0.4
    tables = (WORKERS, WORKER_EVENTS)
    handled_events = (Worker.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        role = ROLE[event.__class__]  # a dict hit: isinstance on the library's event classes is slow
        if role is None:
            return
        worker_id = stored.stream_id
        tx.put(WORKER_EVENTS.name, timeline_key(worker_id, stored.version), {
            "worker_id": worker_id,
            "type": event.event_name,
            "version": stored.version,
            "position": stored.position,
            "occurred_at": event.occurred_at,
            "actor": event.metadata.get("actor", ""),
            "causation_id": event.metadata.get("causation_id", ""),
            "correlation_id": event.metadata.get("correlation_id", ""),
            "data": event.payload(),
        })
        if role == "requested":
            doc: Document | None = _new_worker(worker_id, event)
        else:
            doc = tx.get(WORKERS.name, worker_id)
            if doc is None:
                return
            _apply(doc, event, role)
        doc["stream_version"] = stored.version
        doc["position"] = stored.position
        doc["updated_at"] = event.occurred_at
        doc["live"] = doc["state"] not in NOT_LIVE
        tx.put(WORKERS.name, worker_id, doc)


def _new_worker(worker_id: str, event: Worker.WorkerRequested) -> Document:
    template = event.template
    return {
        "id": worker_id,
        "template_name": event.template_name,
        "template": template,
        "state": WorkerState.PENDING.value,
        "reason": event.reason,
        "region": template.get("region"),
        "license_type": template.get("license_type"),
        "capacity": template["capacity"],
        "max_nodes": template["max_nodes"],
        "port_range": template["port_range"],
        "hourly_cost": template.get("hourly_cost"),
        "cloud_instance_id": None,
        "ip": None,
        "expected_ready_at": event.expected_ready_at,
        "drain_deadline": None,
        "last_error": None,
        "termination_reason": None,
        "phase_times": {WorkerState.PENDING.value: event.occurred_at},
        "reservations": [],
        "created_at": event.occurred_at,
    }


# What an event class is to a worker document (None: not a worker event).
ROLE: ByEventClass[str | None] = ByEventClass({
    Worker.WorkerRequested: "requested", Worker.CapacityReserved: "reserved", Worker.CapacityReleased: "released",
    Worker.ReservationExtended: "extended", Worker.Event: "other",
}, None)


def _apply(doc: Document, event: Any, role: str) -> None:
    if role == "reserved":
        doc["reservations"].append({
            "instance_id": event.instance_id, "resources": event.resources, "nodes": event.nodes,
            "ports": event.ports, "hold_start": event.hold_start, "hold_end": event.hold_end,
        })
        return
    if role == "released":
        doc["reservations"] = [r for r in doc["reservations"] if r["instance_id"] != event.instance_id]
        return
    if role == "extended":
        for reservation in doc["reservations"]:
            if reservation["instance_id"] == event.instance_id:
                reservation["hold_end"] = event.hold_end
        return
    state = STATE_AFTER.get(type(event))
    if state is None:
        return  # an event that changes nothing shown here (still in the timeline)
    doc["state"] = state.value
    doc["phase_times"][state.value] = event.occurred_at
    if isinstance(event, Worker.WorkerProvisioningStarted):
        doc.update(cloud_instance_id=event.cloud_instance_id, region=event.region,
                   expected_ready_at=event.expected_ready_at)
    elif isinstance(event, Worker.WorkerReady):
        doc["ip"] = event.ip
    elif isinstance(event, Worker.WorkerProvisioningFailed):
        doc["last_error"] = event.error
    elif isinstance(event, Worker.DrainingStarted):
        doc["drain_deadline"] = event.drain_deadline
    elif isinstance(event, (Worker.DrainCancelled, Worker.WorkerStopping)):
        doc["drain_deadline"] = None
    elif isinstance(event, Worker.WorkerStopped):
        doc["ip"] = None
    elif isinstance(event, Worker.WorkerRestartRequested):
        doc["expected_ready_at"] = event.expected_ready_at
    elif isinstance(event, Worker.WorkerTerminated):
        doc.update(termination_reason=event.reason, drain_deadline=None, reservations=[])


# -- query side ---------------------------------------------------------------------------


def ledger_of(doc: Document) -> ReservationLedger:
    port_range = doc["port_range"]
    ledger = ReservationLedger(
        Resources.from_dict(doc["capacity"]), doc["max_nodes"], (port_range["start"], port_range["end"])
    )
    for item in doc["reservations"]:
        ledger.add(Reservation.from_dict(item), verify=False)
    return ledger


def _usage(resources: Resources, nodes: int, ports: int) -> dict[str, Any]:
    return {**resources.to_dict(), "nodes": nodes, "ports": ports}


def _port_count(doc: Document) -> int:
    return doc["port_range"]["end"] - doc["port_range"]["start"] + 1


def worker_view(doc: Document, now: datetime) -> Document:
    """The stored worker plus what it holds at ``now``: usage, ports in use."""
    ledger = ledger_of(doc)
    active = ledger.active_at(now)
    used, nodes = ledger.usage_at(now)
    ports_in_use = sorted(
        ({"port": port, "name": name, "instance_id": r.instance_id} for r in active for name, port in r.ports.items()),
        key=lambda p: p["port"],
    )
    capacity = Resources.from_dict(doc["capacity"])
    return {
        **doc,
        "declared": _usage(capacity, doc["max_nodes"], _port_count(doc)),
        "reserved_now": _usage(used, nodes, len(ports_in_use)),
        "ports_in_use": ports_in_use,
        "reservations": [{**r.to_dict(), "active": r.is_active_at(now)} for r in ledger.reservations()],
    }


def worker_capacity(doc: Document, now: datetime, start: datetime, end: datetime) -> Document:
    """Declared, reserved (now and peak over ``[start, end)``) and free capacity of one worker."""
    ledger = ledger_of(doc)
    capacity = Resources.from_dict(doc["capacity"])
    declared = _usage(capacity, doc["max_nodes"], _port_count(doc))
    used_now, nodes_now = ledger.usage_at(now)
    ports_now = sum(len(r.ports) for r in ledger.active_at(now))
    peak, peak_nodes = ledger.peak(start, end)
    ports_free = ledger.free_port_count(start, end)
    return {
        "worker_id": doc["id"],
        "template_name": doc["template_name"],
        "state": doc["state"],
        "declared": declared,
        "reserved_now": _usage(used_now, nodes_now, ports_now),
        "free_now": _usage(capacity.headroom(used_now), max(0, doc["max_nodes"] - nodes_now),
                           max(0, declared["ports"] - ports_now)),
        "reserved_peak": _usage(peak, peak_nodes, declared["ports"] - ports_free),
        "free": _usage(capacity.headroom(peak), max(0, doc["max_nodes"] - peak_nodes), ports_free),
        "reservations": len(ledger.overlapping(start, end)),
    }


def template_capacity(name: str, docs: list[Document], now: datetime, start: datetime, end: datetime) -> Document:
    """The sums over a template's live workers; the peak is the fleet's joint peak, not a sum of peaks."""
    declared = ZERO
    max_nodes = 0
    ports = 0
    states: dict[str, int] = {}
    for doc in docs:
        declared = declared + Resources.from_dict(doc["capacity"])
        max_nodes += doc["max_nodes"]
        ports += _port_count(doc)
        states[doc["state"]] = states.get(doc["state"], 0) + 1
    joint = ReservationLedger(declared, max_nodes, (1, 65535))
    for doc in docs:
        for item in doc["reservations"]:
            reservation = Reservation.from_dict(item)
            joint.add(Reservation(f"{doc['id']}/{reservation.instance_id}", reservation.resources,
                                  reservation.nodes, {}, reservation.hold_start, reservation.hold_end),
                      verify=False)
    per_worker = [worker_capacity(doc, now, start, end) for doc in docs]
    used_now, nodes_now = joint.usage_at(now)
    ports_now = sum(w["reserved_now"]["ports"] for w in per_worker)
    peak, peak_nodes = joint.peak(start, end)
    ports_free = sum(w["free"]["ports"] for w in per_worker)
    return {
        "template_name": name,
        "workers": len(docs),
        "states": states,
        "declared": _usage(declared, max_nodes, ports),
        "reserved_now": _usage(used_now, nodes_now, ports_now),
        "free_now": _usage(declared.headroom(used_now), max(0, max_nodes - nodes_now), max(0, ports - ports_now)),
        "reserved_peak": _usage(peak, peak_nodes, ports - ports_free),
        "free": _usage(declared.headroom(peak), max(0, max_nodes - peak_nodes), ports_free),
    }


class WorkerQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def get(self, worker_id: str) -> Document | None:
        return self.store.get(WORKERS.name, worker_id)

    def list(
        self, *, state: str | None = None, template_name: str | None = None, live: bool | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page:
        where: dict[str, Any] = {}
        if state is not None:
            where["state"] = state
        if template_name is not None:
            where["template_name"] = template_name
        if live is not None:
            where["live"] = live
        return self.store.query(WORKERS.name, where=where, limit=limit, after=check_key_cursor(cursor))

    def live_workers_of(self, template_name: str) -> list[str]:
        return [doc["id"] for doc in self._scan({"template_name": template_name, "live": True})]

    def timeline(self, worker_id: str, *, limit: int = 500, cursor: str | None = None) -> Page:
        return self.store.query(WORKER_EVENTS.name, where={"worker_id": worker_id}, limit=limit,
                                after=check_key_cursor(cursor))

    def capacity(
        self, now: datetime, start: datetime, end: datetime, *,
        template_name: str | None = None, worker_id: str | None = None,
    ) -> Document:
        where: dict[str, Any] = {"live": True}
        if template_name is not None:
            where["template_name"] = template_name
        if worker_id is not None:
            where["key"] = worker_id
        docs = list(self._scan(where))
        by_template: dict[str, list[Document]] = {}
        for doc in docs:
            by_template.setdefault(doc["template_name"], []).append(doc)
        return {
            "at": now, "from": start, "to": end,
            "templates": [template_capacity(name, group, now, start, end)
                          for name, group in sorted(by_template.items())],
            "workers": [worker_capacity(doc, now, start, end) for doc in docs],
        }

    def reservations(
        self, now: datetime, start: datetime, end: datetime, *,
        worker_id: str | None = None, instance_id: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page:
        """Reservations overlapping ``[start, end)``, by (hold_start, worker, instance)."""
        after: tuple[str, str, str] | None = None
        if cursor is not None:
            value, _key = decode_cursor(cursor)
            if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
                raise ValueError(f"invalid cursor {cursor!r}")
            after = (value[0], value[1], value[2])
        where: dict[str, Any] = {} if worker_id is None else {"key": worker_id}
        rows: list[tuple[tuple[str, str, str], Document]] = []
        for doc in self._scan(where):
            for reservation in ledger_of(doc).overlapping(start, end):
                if instance_id is not None and reservation.instance_id != instance_id:
                    continue
                order = (_utc_key(reservation.hold_start), doc["id"], reservation.instance_id)
                if after is not None and order <= after:
                    continue
                rows.append((order, {
                    **reservation.to_dict(), "worker_id": doc["id"], "template_name": doc["template_name"],
                    "worker_state": doc["state"], "active": reservation.is_active_at(now),
                }))
        rows.sort(key=lambda row: row[0])
        page = rows[:limit]
        next_cursor = encode_cursor(list(page[-1][0]), page[-1][0][2]) if len(rows) > limit else None
        return Page([doc for _order, doc in page], next_cursor)

    def _scan(self, where: dict[str, Any]) -> Iterator[Document]:
        after: str | None = None
        while True:
            page = self.store.query(WORKERS.name, where=where, limit=SCAN_PAGE, after=after)
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor


def _utc_key(moment: datetime) -> str:
    """A sortable text form of an instant (fixed width, UTC, microseconds)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


PROJECTIONS = (WorkersProjection(),)
