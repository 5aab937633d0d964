"""Read model of worker templates: one document per name (removed ones kept, flagged)."""

from __future__ import annotations

from typing import Any

from domain.worker_template import WorkerTemplate
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Document, Page, ReadModelStore, ReadModelTx, Table, decode_cursor

TEMPLATES = Table("worker_templates", {"removed": bool, "license_type": str, "region": str})


class WorkerTemplatesProjection(Projection):
    name = "worker_templates"
    version = 1
    rebuild_weight = 0.6
    tables = (TEMPLATES,)
    handled_events = (WorkerTemplate.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        if not isinstance(event, WorkerTemplate.Event):
            return
        if isinstance(event, (WorkerTemplate.WorkerTemplateRegistered, WorkerTemplate.WorkerTemplateReregistered)):
            previous = tx.get(TEMPLATES.name, event.name) or {}
            tx.put(TEMPLATES.name, event.name, {
                **event.spec,
                "removed": False,
                "created_at": previous.get("created_at", event.occurred_at),
                "updated_at": event.occurred_at,
                "stream_version": stored.version,
                "position": stored.position,
            })
            return
        doc = tx.get(TEMPLATES.name, event.name)
        if doc is None:  # an update without a registration cannot happen; ignore rather than fail
            return
        if isinstance(event, WorkerTemplate.WorkerTemplateUpdated):
            doc.update(event.spec)
        elif isinstance(event, WorkerTemplate.WorkerTemplateRemoved):
            doc["removed"] = True
        doc["updated_at"] = event.occurred_at
        doc["stream_version"] = stored.version
        doc["position"] = stored.position
        tx.put(TEMPLATES.name, event.name, doc)


def check_key_cursor(cursor: str | None) -> str | None:
    """Raise ``ValueError`` unless ``cursor`` is one this API handed out (key-ordered pages)."""
    if cursor is None:
        return None
    _value, key = decode_cursor(cursor)
    if not key:
        raise ValueError(f"invalid cursor {cursor!r}")
    return cursor


class TemplateQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def get(self, name: str) -> Document | None:
        doc = self.store.get(TEMPLATES.name, name)
        return None if doc is None or doc.get("removed") else doc

    def list(self, *, license_type: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        where: dict[str, Any] = {"removed": False}
        if license_type is not None:
            where["license_type"] = license_type
        return self.store.query(TEMPLATES.name, where=where, limit=limit, after=check_key_cursor(cursor))


PROJECTIONS = (WorkerTemplatesProjection(),)
