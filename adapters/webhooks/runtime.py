"""The running webhook dispatcher of one LRM process: wires the dispatcher core to the event
store, the HTTP sender and the delivery log, and offers what the API needs (attempts,
dead letters, redelivery).

Threads: the dispatcher runs on its own asyncio loop in a daemon thread
(``DispatcherThread``); a ``Follower`` thread watches the log for subscription changes and
wakes the dispatcher. Event-store reads of the feed run in worker threads
(``asyncio.to_thread``) so a slow read never stalls deliveries to other receivers.
Command handling never waits for any of this.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eventsourcing.utils import get_topic

from adapters.cloudevents.feed import DomainEventFeed
from adapters.cloudevents.mapping import encode_outbound
from adapters.cloudevents.types import event_classes
from adapters.webhooks.egress import EgressPolicy
from adapters.webhooks.endpoint import HttpEndpointValidator
from adapters.webhooks.memory import InMemoryCheckpoints, InMemoryDeliveryLog
from adapters.webhooks.sender import HttpWebhookSender
from adapters.webhooks.sql import SqlWebhookStore
from domain.base import DomainEvent
from domain.context import CommandContext
from domain.errors import NotFound
from domain.subscription import WebhookSubscription
from processors.dispatcher.dispatcher import Dispatcher, DispatcherConfig
from processors.dispatcher.follow import SubscriptionFollower
from processors.dispatcher.process_manager import SubscriptionSync
from processors.dispatcher.thread import DispatcherThread
from processors.ports.webhooks import DeadLetter, DeliveryAttempt, WebhookTransport
from processors.retry import retry_on_conflict

DISPATCHER_ACTOR = "system:webhook-dispatcher"

SUBSCRIPTION_TOPICS: tuple[str, ...] = tuple(get_topic(c) for c in event_classes(WebhookSubscription))


class MemoryWebhookStore(InMemoryDeliveryLog, InMemoryCheckpoints):
    """Delivery log and checkpoints in memory (``LRM_STORE=memory``)."""

    def __init__(self) -> None:
        InMemoryDeliveryLog.__init__(self)
        InMemoryCheckpoints.__init__(self)

    def close(self) -> None:
        pass


def open_webhook_store(kind: str, *, sqlite_path: Path | None = None, postgres_url: str = "") -> Any:
    """``SqlWebhookStore`` on SQLite or PostgreSQL, or the in-memory one."""
    if kind == "postgres":
        return SqlWebhookStore.postgres(postgres_url)
    if kind == "memory":
        return MemoryWebhookStore()
    assert sqlite_path is not None
    return SqlWebhookStore.sqlite(str(sqlite_path))


@dataclass(frozen=True)
class WebhookEgress:
    """The egress policy and what obeys it: the delivery sender and the creation-time check."""

    policy: EgressPolicy
    origin: str
    validator: HttpEndpointValidator

    def sender_factory(self) -> HttpWebhookSender:
        return HttpWebhookSender(policy=self.policy, origin=self.origin)


def webhook_egress(
    *, allow_http: bool, allowed_networks: Sequence[str], origin: str = "", handshake_timeout: float = 10.0
) -> WebhookEgress:
    policy = EgressPolicy.from_settings(allow_http=allow_http, allowed_networks=allowed_networks)
    # gethostname, not getfqdn: no reverse DNS lookup (which can hang) at start-up.
    origin = origin or socket.gethostname()
    return WebhookEgress(policy, origin, HttpEndpointValidator(policy, origin=origin, timeout=handshake_timeout))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WebhookDelivery:
    """Start it once per process; every method is safe from any thread."""

    def __init__(
        self,
        events: Any,  # adapters.eventstore.store.EventStore
        webhook_store: Any,  # DeliveryLog + SubscriptionCheckpoints (+ attempt_page, close)
        *,
        source: str,
        config: DispatcherConfig | None = None,
        transport_factory: Callable[[], WebhookTransport] = HttpWebhookSender,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.events = events
        self.webhook_store = webhook_store
        self.source = source
        self._config = config
        self._transport_factory = transport_factory
        self._now = now
        self._transport: WebhookTransport | None = None
        self._thread: DispatcherThread | None = None
        self._follower: SubscriptionFollower | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = DispatcherThread(self._build, on_stop=self._close_transport)
        self._thread.start()
        sync = SubscriptionSync(self._thread.dispatcher, self._load, self.webhook_store)
        self._follower = SubscriptionFollower(
            self.events, self._thread, sync, subscription_topics=SUBSCRIPTION_TOPICS
        )
        self._follower.start()

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.webhook_store.close()

    def _build(self) -> Dispatcher:
        # Runs on the dispatcher's loop: the HTTP client belongs to that loop.
        self._transport = self._transport_factory()
        return Dispatcher(
            feed=DomainEventFeed(self._read_after, source=self.source),
            encode=encode_outbound,
            transport=self._transport,
            log=self.webhook_store,
            checkpoints=self.webhook_store,
            on_disable=self._disable,
            config=self._config,
        )

    async def _close_transport(self) -> None:
        close = getattr(self._transport, "aclose", None)
        if close is not None:
            await close()

    async def _read_after(self, position: int, limit: int) -> Sequence[tuple[int, DomainEvent]]:
        stored = await asyncio.to_thread(self.events.read_all, position, limit)
        return [(s.position, s.event) for s in stored]

    def _load(self, subscription_id: str) -> WebhookSubscription:
        return self.events.get(subscription_id)

    async def _disable(self, subscription_id: str, reason: str) -> None:
        """A receiver answered 410 Gone: record it, so every process stops delivering."""

        def attempt() -> None:
            try:
                subscription = self.events.get(subscription_id)
            except NotFound:
                return
            ctx = CommandContext(at=self._now(), actor=DISPATCHER_ACTOR, causation_id=f"webhook-410:{subscription_id}")
            subscription.disable(ctx, reason)
            self.events.save(subscription)

        await asyncio.to_thread(retry_on_conflict, attempt)

    # -- operations the API offers ------------------------------------------------------
    def notify(self) -> None:
        """New events were appended (the follower does this too; calling it is optional)."""
        if self._thread is not None:
            self._thread.notify()

    def attempt_page(
        self, subscription_id: str, *, event_id: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[tuple[int, DeliveryAttempt]]:
        return self.webhook_store.attempt_page(subscription_id, event_id=event_id, limit=limit, before=before)

    def dead_letter_page(self, subscription_id: str, *, limit: int = 50, after_position: int = -1) -> list[DeadLetter]:
        return self.webhook_store.dead_letter_page(subscription_id, limit=limit, after_position=after_position)

    def redeliver(self, subscription_id: str, event_id: str) -> bool:
        """Send a dead letter again; False if there is no such dead letter."""
        if self._thread is None:
            # Not delivering in this process: the mark survives, the next start sends it.
            return self.webhook_store.redeliver(subscription_id, event_id) is not None
        return self._thread.call(lambda d: d.redeliver(subscription_id, event_id))

    def idle(self) -> bool:
        """Every delivering subscription is caught up and has nothing left to send (tests)."""
        if self._thread is None:
            return True
        return self._thread.call(lambda d: d.idle())

    def delivering(self) -> list[str]:
        if self._thread is None:
            return []
        return self._thread.call(lambda d: d.subscriptions())
