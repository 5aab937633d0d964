"""Scaling decisions (the scaling audit, SPEC §5, §8 ``scaling/decisions``): newest first.

The ``ScalingDecided`` events live on the autoscaler's ``ScalingDecision-<uuid>`` stream
(``domain/scaling_decision.py``). Projections may import only the domain, so the
events are matched by stream category and event name; the payload is copied as is, with
the actions a later ``ScalingActionsRejected`` reported as refused.
"""

from __future__ import annotations

from typing import Any

from domain.scaling_decision import ScalingDecision
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Document, Page, ReadModelStore, ReadModelTx, Table, decode_cursor

SCALING_DECISIONS = Table("scaling_decisions", {"position": int, "has_actions": bool})
STREAM_CATEGORY = "ScalingDecision-"
_FIELDS = ("policy", "reason", "actions", "deferred", "unplaceable", "next_decision_at", "capacity_plan",
           "inputs", "launched_worker_ids")


class ScalingDecisionsProjection(Projection):
    name = "scaling_decisions"
    version = 1
    rebuild_weight = 0.7
    tables = (SCALING_DECISIONS,)
    handled_events = (ScalingDecision.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        if not stored.stream_id.startswith(STREAM_CATEGORY):
            return
        event = stored.event
        if stored.event_name == "ScalingDecided":
            doc: Document = {
                "decision_id": event.decision_id,
                "position": stored.position,
                "at": event.occurred_at,
                "actor": event.metadata.get("actor", ""),
                **{name: getattr(event, name) for name in _FIELDS},
                "has_actions": any(a.get("action") != "NoAction" for a in event.actions),
                "rejected": [],
            }
            tx.put(SCALING_DECISIONS.name, event.decision_id, doc)
        elif stored.event_name == "ScalingActionsRejected":
            found = tx.get(SCALING_DECISIONS.name, event.decision_id)
            if found is not None:
                found["rejected"] = list(found["rejected"]) + list(event.rejected)
                tx.put(SCALING_DECISIONS.name, event.decision_id, found)


class ScalingQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def get(self, decision_id: str) -> Document | None:
        return self.store.get(SCALING_DECISIONS.name, decision_id)

    def list(self, *, has_actions: bool | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest first; ``has_actions=True`` hides the decisions that only waited."""
        if cursor is not None:
            decode_cursor(cursor)  # ValueError for a cursor we did not hand out
        where: dict[str, Any] = {} if has_actions is None else {"has_actions": has_actions}
        return self.store.query(SCALING_DECISIONS.name, where=where, order_by="position", descending=True,
                                limit=limit, after=cursor)


PROJECTIONS = (ScalingDecisionsProjection(),)
