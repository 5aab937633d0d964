"""Events recorded before ScalingDecision and CloudReconciliation moved to ``domain/`` still load.

The log keeps each event's topic (``module:Aggregate.Event``) and, in the creating event,
the aggregate's topic; here they are rewritten to the old modules' names on disk, as a log
written before the move has them, and read back through a freshly opened store.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.eventstore.factory import open_event_store
from domain.cloud_reconciliation import CloudReconciliation
from domain.context import CommandContext
from domain.scaling_decision import ScalingDecision

CTX = CommandContext(at=datetime(2026, 1, 5, 9, tzinfo=UTC), actor="system:test")
OLD_MODULES = {
    "domain.scaling_decision:": "processors.autoscaler.decision:",
    "domain.cloud_reconciliation:": "processors.workers.audit:",
}


def _rewrite_to_old_topics(path: Path) -> int:
    """Point every stored topic of the moved aggregates at the module they used to live in."""
    changed = 0
    with closing(sqlite3.connect(path)) as db, db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        table = next(name for (name,) in tables if name.endswith("events"))
        rows = db.execute(f"SELECT rowid, topic, state FROM {table}").fetchall()  # noqa: S608
        for rowid, topic, state in rows:
            text = bytes(state).decode()
            for new, old in OLD_MODULES.items():
                topic, text = topic.replace(new, old), text.replace(new, old)
            update = f"UPDATE {table} SET topic = ?, state = ? WHERE rowid = ?"  # noqa: S608
            db.execute(update, (topic, text.encode(), rowid))
            changed += topic.startswith(tuple(OLD_MODULES.values()))
    return changed


@pytest.fixture
def old_log(tmp_path: Path) -> tuple[Path, str, str]:
    path = tmp_path / "events.sqlite"
    audit = ScalingDecision.start("default", CTX)
    audit.decide(
        {"policy": "p", "actions": [], "deferred": [], "unplaceable": [], "next_decision_at": None,
         "capacity_plan": [], "inputs": {}},
        CTX, reason="r", launched_worker_ids=[], signature="s",
    )
    audit.reject("d-1", [{"kind": "stop"}], CTX)
    reconciliation = CloudReconciliation.record(CTX, provider="sim", vms_seen=2, orphans_terminated=[],
                                                workers_lost=[])
    with open_event_store("sqlite", sqlite_path=path) as store:
        store.save(audit, reconciliation)
    assert _rewrite_to_old_topics(path) == 4
    return path, audit.id, reconciliation.id


def test_events_stored_under_the_old_modules_load_as_the_moved_classes(old_log: tuple[Path, str, str]) -> None:
    path, audit_id, reconciliation_id = old_log
    with open_event_store("sqlite", sqlite_path=path) as store:
        topics = [e.topic for e in store.read_all()]
        assert all(t.startswith(tuple(OLD_MODULES.values())) for t in topics), topics
        assert [type(e.event) for e in store.read_all()] == [
            ScalingDecision.ScalingAuditStarted, ScalingDecision.ScalingDecided,
            ScalingDecision.ScalingActionsRejected, CloudReconciliation.CloudReconciled,
        ]
        audit = store.get(audit_id)
        assert isinstance(audit, ScalingDecision) and (audit.decisions, audit.last_signature) == (1, "s")
        reconciliation = store.get(reconciliation_id)
        assert isinstance(reconciliation, CloudReconciliation) and reconciliation.vms_seen == 2
