"""Projections used by the tests (importable by the crash subprocess too)."""

from __future__ import annotations

import os
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import ReadModelTx, Table


class CounterSummary(Projection):
    """One document per counter, plus an ``applied`` row per event that counts how many
    times the event was applied: any duplicate shows up as a count of 2."""

    name = "counter_summary"
    version = 1
    tables = (
        Table("counters", {"label": str, "total": int, "closed": bool}),
        Table("applied", {"times": int}),
    )

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        key = f"{event.stream_id}@{event.version}"
        seen = tx.get("applied", key)
        tx.put("applied", key, {"times": (seen or {"times": 0})["times"] + 1,
                                "position": event.position})
        name = event.event_name
        if name == "Opened":
            tx.put("counters", event.stream_id, {"id": event.stream_id, "label": event.event.label,
                                                 "total": 0, "closed": False, "events": 1})
            return
        doc = tx.get("counters", event.stream_id)
        assert doc is not None, f"{event.stream_id} not opened"
        doc["events"] += 1
        if name == "Bumped":
            doc["total"] += event.event.by
        elif name == "Closed":
            doc["closed"] = True
        tx.put("counters", event.stream_id, doc)


class CounterSummaryV2(CounterSummary):
    """Same tables, new meaning (bumps count double): bumping the version rebuilds it."""

    version = 2

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        super().handle(event, tx)
        if event.event_name == "Bumped":
            doc = tx.get("counters", event.stream_id)
            assert doc is not None
            doc["total"] += event.event.by
            tx.put("counters", event.stream_id, doc)


class EventLog(Projection):
    """Every event in order (a second projection sharing the runner)."""

    name = "event_log"
    tables = (Table("log", {"position": int, "stream": str}),)

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        tx.put("log", f"{event.position:012d}", {"position": event.position,
                                                 "stream": event.stream_id,
                                                 "name": event.event_name})


class ExitAfter(CounterSummary):
    """Kills the process (no cleanup, no rollback) while handling the n-th event it sees:
    after some effects of the batch were applied, before the checkpoint is committed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        super().handle(event, tx)
        self.seen += 1
        if self.seen == self.n:
            os._exit(3)
