"""One contract for the DeliveryLog + SubscriptionCheckpoints implementations."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from adapters.webhooks.memory import InMemoryCheckpoints, InMemoryDeliveryLog
from adapters.webhooks.sql import SqlWebhookStore
from processors.ports.webhooks import DeadLetter, DeliveryAttempt, EncodedMessage

T = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
PG_URL = os.environ.get("LRM_TEST_POSTGRES_URL")


class MemoryStore(InMemoryDeliveryLog, InMemoryCheckpoints):
    def __init__(self) -> None:
        InMemoryDeliveryLog.__init__(self)
        InMemoryCheckpoints.__init__(self)


def _postgres():
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for table in ("webhook_checkpoints", "webhook_attempts", "webhook_dead_letters"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return SqlWebhookStore.postgres(PG_URL)


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.skipif(not PG_URL, reason="LRM_TEST_POSTGRES_URL unset")]),
    ]
)
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore()
        return
    s = SqlWebhookStore.sqlite(str(tmp_path / "webhooks.db")) if request.param == "sqlite" else _postgres()
    yield s
    s.close()


def attempt(n, event="e1", outcome="retry", status=500, sub="S1"):
    return DeliveryAttempt(sub, event, 3, "Worker-1", n, T + timedelta(seconds=n), status, 0.25, "boom", outcome, T + timedelta(seconds=n + 10))


def dead(event="e1", sub="S1", position=3):
    return DeadLetter(sub, event, position, "Worker-1", "ccm.worker.ready", "HTTP 400", 2, T,
                      EncodedMessage({"content-type": "application/cloudevents+json"}, b"\x00{\"a\": 1}\xff"))


def test_checkpoints(store):
    assert store.get("S1") is None
    store.set("S1", 0)
    assert store.get("S1") == 0
    store.set("S1", 2**40)
    assert store.get("S1") == 2**40
    store.delete("S1")
    assert store.get("S1") is None


def test_attempts_round_trip_in_order(store):
    for n in (1, 2, 3):
        store.record_attempt(attempt(n))
    store.record_attempt(attempt(1, event="e2", outcome="delivered", status=None))
    assert store.attempts("S1", "e1") == [attempt(1), attempt(2), attempt(3)]
    assert store.attempts("S1", limit=2) == [attempt(3), attempt(1, event="e2", outcome="delivered", status=None)]
    assert store.attempts("S2") == []


def test_dead_letters_and_redelivery(store):
    store.add_dead_letter(dead("e1"))
    store.add_dead_letter(dead("e0", position=1))
    store.add_dead_letter(dead("e9", sub="S2"))
    assert [d.event_id for d in store.dead_letters("S1")] == ["e0", "e1"]
    assert len(store.dead_letters()) == 3
    assert store.dead_letters("S1")[1] == dead("e1")  # bytes and headers intact
    assert store.redeliveries("S1") == []
    marked = store.redeliver("S1", "e1")
    assert marked is not None and marked.redelivering
    assert store.redeliver("S1", "nope") is None
    assert [d.event_id for d in store.redeliveries("S1")] == ["e1"]
    # Dead again after the redelivery: replaced, no longer marked.
    store.add_dead_letter(dead("e1"))
    assert store.redeliveries("S1") == []
    store.resolve_dead_letter("S1", "e1")
    assert [d.event_id for d in store.dead_letters("S1")] == ["e0"]


def test_sqlite_survives_reopening(tmp_path):
    path = str(tmp_path / "w.db")
    s = SqlWebhookStore.sqlite(path)
    s.set("S1", 5)
    s.add_dead_letter(dead())
    s.close()
    s = SqlWebhookStore.sqlite(path)
    assert s.get("S1") == 5 and s.dead_letters("S1") == [dead()]
    s.close()
