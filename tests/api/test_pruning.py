"""Bounded tables: delivery attempts and the CloudEvents inbox are pruned by the retention,
and what is within the window (and every claimed row) stays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.webhooks.memory import InMemoryDeliveryLog
from adapters.webhooks.sql import SqlWebhookStore
from processors.commands.cloudevents import Ingested
from processors.ports.webhooks import DeliveryAttempt
from processors.pruning import Pruner
from tests.api.test_instances_support import NOW
from tests.api.test_templates_support import control_client


def attempt(n: int, at_days_ago: float) -> DeliveryAttempt:
    return DeliveryAttempt(subscription_id="WebhookSubscription-1", event_id=f"e{n}", position=n, subject="s",
                           attempt=1, at=NOW - timedelta(days=at_days_ago), status=200, latency=0.01, error=None,
                           outcome="delivered")


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_old_delivery_attempts_are_pruned_recent_ones_kept(tmp_path: Path, kind: str) -> None:
    log = SqlWebhookStore.sqlite(str(tmp_path / "w.sqlite3")) if kind == "sqlite" else InMemoryDeliveryLog()
    for n, age in enumerate((40, 31, 29, 1)):
        log.record_attempt(attempt(n, age))
    assert log.prune_attempts(NOW - timedelta(days=30)) == 2
    assert sorted(a.event_id for a in log.attempts("WebhookSubscription-1")) == ["e2", "e3"]
    assert log.prune_attempts(NOW - timedelta(days=30)) == 0


def test_the_inbox_forgets_after_the_window_but_keeps_claims(tmp_path: Path) -> None:
    with control_client(tmp_path) as (_client, container):
        inbox = container.cloudevent_intake.inbox
        inbox.put(Ingested("old", "urn:lds", "lds.session.started", "accepted"), NOW - timedelta(days=40))
        inbox.put(Ingested("new", "urn:lds", "lds.session.started", "accepted"), NOW - timedelta(days=2))
        inbox.put(Ingested("stuck", "urn:lds", "lds.session.started", "claimed"), NOW - timedelta(days=40))
        pruner = Pruner({"cloudevent_inbox": inbox.prune}, timedelta(days=30), container.clock)
        assert pruner.tick(NOW) == {"cloudevent_inbox": 1}
        assert inbox.get("urn:lds", "old") is None
        assert inbox.get("urn:lds", "new") is not None  # still a duplicate within the window
        assert inbox.get("urn:lds", "stuck") is not None  # a claim is the trace of a command in flight
        assert pruner.tick(NOW + timedelta(minutes=5)) is None  # not again before the hour


def test_housekeeping_prunes_with_the_configured_retention(tmp_path: Path) -> None:
    with control_client(tmp_path, retention_days=7) as (_client, container):
        container.webhook_log.record_attempt(attempt(1, 8))
        container.webhook_log.record_attempt(attempt(2, 6))
        container.housekeeping_tick()
        assert [a.event_id for a in container.webhook_log.attempts("WebhookSubscription-1")] == ["e2"]
