"""Read model of scheduling: every placement decision, and the queue of PENDING instances.

``placement_decisions`` holds one document per ``PlacementDecided``/``PlacementFailed``
(the recorded decision: candidates, rejections by worker and by filter, scores, chosen
worker, policy), keyed ``<instance id>/<stream version>`` so one instance's decisions
read in order; ``scheduling_instances`` follows every instance's state, owner and start,
so the queue (state PENDING) reads FIFO by start time, with the last failure's summary
("why is it still pending").
"""

from __future__ import annotations

from typing import Any

from domain.instance import InstanceState, LabletInstance
from projections.dispatch import ByEventClass
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Document, Page, ReadModelStore, ReadModelTx, Table, decode_cursor
from projections.readmodels.instances import STATE_VALUE_AFTER
from projections.readmodels.timestamps import iso

DECISIONS = Table("placement_decisions", {"instance_id": str, "position": int, "outcome": str, "owner_id": str})
SCHEDULING = Table("scheduling_instances", {"state": str, "owner_id": str, "start": str})

I = LabletInstance  # noqa: E741 - short alias for the event classes below


def decision_key(instance_id: str, version: int) -> str:
    return f"{instance_id}/{version:012d}"


class SchedulingProjection(Projection):
    name = "scheduling"
    version = 1
    rebuild_weight = 1.0
    tables = (DECISIONS, SCHEDULING)
    handled_events = (LabletInstance.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        role = ROLE[event.__class__]  # a dict hit: isinstance on the library's event classes is slow
        if role is None:
            return
        instance_id = stored.stream_id
        if role == "requested":
            start = event.timeslot_start or event.timestamp
            tx.put(SCHEDULING.name, instance_id, {
                "instance_id": instance_id, "state": InstanceState.PENDING.value, "owner_id": event.owner_id,
                "definition_name": event.definition_name, "definition_version": event.definition_version,
                "timeslot_start": iso(event.timeslot_start), "timeslot_end": iso(event.timeslot_end),
                "requested_at": iso(event.timestamp), "queued_at": iso(event.timestamp), "start": iso(start),
                "requirements": event.requirements, "worker_id": None, "last_failure": None,
                "last_decision_position": None, "position": stored.position,
            })
            return
        doc = tx.get(SCHEDULING.name, instance_id)
        if doc is None:
            return
        if role == "decided" or role == "failed":
            placed = role == "decided"
            tx.put(DECISIONS.name, decision_key(instance_id, stored.version), {
                "decision_id": event.decision_id, "instance_id": instance_id, "owner_id": doc["owner_id"],
                "event": event.event_name, "outcome": "placed" if placed else "unplaceable",
                "worker_id": event.worker_id if placed else None,
                "summary": None if placed else event.summary,
                "occurred_at": iso(event.timestamp), "actor": event.metadata.get("actor", ""),
                "position": stored.position, "version": stored.version, "decision": event.decision,
            })
            doc["last_failure"] = None if placed else event.summary
            doc["last_decision_position"] = stored.position
        elif role == "moved":
            doc["worker_id"] = event.worker_id
        state = STATE_VALUE_AFTER[event.__class__]
        if state is not None:
            doc["state"] = state
            if role == "scheduled":
                doc["worker_id"] = event.worker_id
            elif role == "requeued":
                doc.update(worker_id=None, queued_at=iso(event.timestamp), last_failure=None)
        doc["position"] = stored.position
        tx.put(SCHEDULING.name, instance_id, doc)


# What an event class is to the scheduling documents (None: not an instance event).
ROLE: ByEventClass[str | None] = ByEventClass({
    I.InstanceRequested: "requested", I.PlacementDecided: "decided", I.PlacementFailed: "failed",
    I.InstanceMoved: "moved", I.InstanceScheduled: "scheduled", I.InstanceRequeued: "requeued",
    I.Event: "other",
}, None)


class SchedulingQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def decisions(
        self, *, instance_id: str | None = None, owner_id: str | None = None, outcome: str | None = None,
        limit: int = 50, cursor: str | None = None,
    ) -> Page:
        """One instance's decisions in order, or all decisions newest first."""
        where: dict[str, Any] = {}
        if owner_id is not None:
            where["owner_id"] = owner_id
        if outcome is not None:
            where["outcome"] = outcome
        if instance_id is not None:
            where["instance_id"] = instance_id
            return self.store.query(DECISIONS.name, where=where, limit=limit, after=_checked(cursor))
        return self.store.query(DECISIONS.name, where=where, order_by="position", descending=True, limit=limit,
                                after=_checked(cursor))

    def queue(self, *, owner_id: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        """PENDING instances, FIFO by start time (ASAP: the request time)."""
        where: dict[str, Any] = {"state": InstanceState.PENDING.value}
        if owner_id is not None:
            where["owner_id"] = owner_id
        return self.store.query(SCHEDULING.name, where=where, order_by="start", limit=limit, after=_checked(cursor))

    def instance(self, instance_id: str) -> Document | None:
        return self.store.get(SCHEDULING.name, instance_id)


def _checked(cursor: str | None) -> str | None:
    if cursor is not None:
        decode_cursor(cursor)  # ValueError for a cursor we did not hand out
    return cursor


PROJECTIONS = (SchedulingProjection(),)
