"""Read models of the CloudEvents integration.

- ``subscriptions``: webhook subscriptions as listed by the API (never the secret: the
  events' ``payload()`` leaves it out);
- ``cloudevent_sessions``: user-session and grading-session ids -> instance id, so an
  incoming CloudEvent that names only its session (``lds.session.*`` from LDS,
  ``grading.session.*`` from a grader) finds its lablet instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.instance import LabletInstance
from domain.subscription import WebhookSubscription
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Document, Page, ReadModelStore, ReadModelTx, Table
from projections.readmodels.templates import check_key_cursor

SUBSCRIPTIONS = Table("subscriptions", {"owner": str, "deleted": bool})
SESSIONS = Table("cloudevent_sessions", {"instance_id": str})

# Keys of the session objects that carry the session's id (first found wins).
SESSION_ID_KEYS = ("session_id", "id")

Sub = WebhookSubscription


class SubscriptionsProjection(Projection):
    name = "subscriptions"
    version = 2  # 2: allowed_rate, rotated_at, overlap_until
    rebuild_weight = 0.85
    tables = (SUBSCRIPTIONS,)
    handled_events = (Sub.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        if not isinstance(event, Sub.Event):
            return
        sid = stored.stream_id
        if isinstance(event, Sub.SubscriptionCreated):
            doc: Document | None = {
                "id": sid,
                "url": event.url,
                "types": list(event.types),
                "subjects": list(event.subjects),
                "mode": event.mode,
                "owner": event.owner,
                "enabled": True,
                "disabled_reason": None,
                "deleted": False,
                "created_at": event.occurred_at,
                "last_replay_from": None,
                "allowed_rate": getattr(event, "allowed_rate", None),
                "rotated_at": None,
                "overlap_until": None,
            }
        else:
            doc = tx.get(SUBSCRIPTIONS.name, sid)
            if doc is None:
                return
            if isinstance(event, Sub.SubscriptionDisabled):
                doc.update(enabled=False, disabled_reason=event.reason)
            elif isinstance(event, Sub.SubscriptionEnabled):
                doc.update(enabled=True, disabled_reason=None)
            elif isinstance(event, Sub.SubscriptionDeleted):
                doc.update(enabled=False, deleted=True)
            elif isinstance(event, Sub.SubscriptionReplayRequested):
                doc["last_replay_from"] = event.from_position
            elif isinstance(event, Sub.SubscriptionSecretRotated):
                doc.update(rotated_at=event.occurred_at, overlap_until=event.previous_valid_until)
        doc["updated_at"] = event.occurred_at
        doc["stream_version"] = stored.version
        doc["position"] = stored.position
        tx.put(SUBSCRIPTIONS.name, sid, doc)


def session_id_of(session: Mapping[str, Any] | None) -> str | None:
    if not isinstance(session, Mapping):
        return None
    for key in SESSION_ID_KEYS:
        value = session.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


class CloudEventSessionsProjection(Projection):
    name = "cloudevent_sessions"
    version = 1
    rebuild_weight = 0.5
    tables = (SESSIONS,)
    handled_events = (LabletInstance.InstanceReady, LabletInstance.GradingStarted)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        if isinstance(event, LabletInstance.InstanceReady):
            kind, session = "user", event.user_session
        elif isinstance(event, LabletInstance.GradingStarted):
            kind, session = "grading", event.grading_session
        else:
            return
        session_id = session_id_of(session)
        if session_id is not None:
            tx.put(SESSIONS.name, session_id, {"instance_id": stored.stream_id, "kind": kind,
                                              "position": stored.position})


class SubscriptionQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def get(self, subscription_id: str) -> Document | None:
        return self.store.get(SUBSCRIPTIONS.name, subscription_id)

    def list(self, *, owner: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        """Live (not deleted) subscriptions, of ``owner`` only when given, in key order."""
        where: dict[str, Any] = {"deleted": False}
        if owner is not None:
            where["owner"] = owner
        return self.store.query(SUBSCRIPTIONS.name, where=where, limit=limit, after=check_key_cursor(cursor))

    def instance_for_session(self, session_id: str) -> str | None:
        doc = self.store.get(SESSIONS.name, session_id)
        return doc["instance_id"] if doc else None


PROJECTIONS = (SubscriptionsProjection(), CloudEventSessionsProjection())
