"""Keeps a running dispatcher in step with the event store.

Two duties, both from one ``Follower`` over the global log:

- subscription events (created, disabled, enabled, deleted, replay requested) go to
  ``SubscriptionSync`` on the dispatcher's loop, so the set of delivering subscriptions
  follows the log in every process, whoever made the change;
- every appended event wakes the dispatcher (``notify``), so delivery starts at once
  instead of at the next poll.

The dispatcher's subscriptions live in memory, so at start the follower first feeds
``SubscriptionSync`` every subscription event of the log (read with a topic filter, which
is cheap however long the log is); ``SubscriptionSync`` is idempotent, so feeding events
again is harmless. It then follows the log from the position it read up to at start.
Each subscription keeps its own delivery checkpoint (``SubscriptionCheckpoints``): this
follower's position is not a delivery checkpoint and is not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from domain.subscription import WebhookSubscription
from processors.dispatcher.process_manager import SubscriptionSync
from processors.dispatcher.thread import DispatcherThread
from processors.follower import Follower
from projections.events import StoredEvent
from projections.ports import EventFeed

log = logging.getLogger(__name__)

BOOTSTRAP_BATCH = 500
SYNC_TIMEOUT = 30.0


class _StartingPoint:
    """A follower checkpoint kept in memory (see the module docstring)."""

    def __init__(self, position: int) -> None:
        self.position = position

    def load_checkpoint(self, name: str) -> int:
        return self.position

    def save_checkpoint(self, name: str, position: int) -> None:
        self.position = position


class SubscriptionFollower:
    def __init__(
        self,
        events: EventFeed,
        thread: DispatcherThread,
        sync: SubscriptionSync,
        *,
        subscription_topics: Sequence[str],
        name: str = "webhook-dispatcher",
    ) -> None:
        self._events = events
        self._thread = thread
        self._sync = sync
        self._topics = tuple(subscription_topics)
        self._name = name
        self._follower: Follower | None = None

    @property
    def follower(self) -> Follower | None:
        return self._follower

    def start(self) -> None:
        head = self._events.max_position()
        self.bootstrap()
        self._follower = Follower(self._name, self._events, _StartingPoint(head), self.handle)
        self._follower.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._follower is not None:
            self._follower.stop(timeout)
            self._follower = None

    def bootstrap(self) -> int:
        """Feed every subscription event of the log to the dispatcher; returns how many."""
        position, count = 0, 0
        while True:
            batch = self._events.read_all(after=position, limit=BOOTSTRAP_BATCH, topics=self._topics)
            for stored in batch:
                self._apply(stored)
            count += len(batch)
            if len(batch) < BOOTSTRAP_BATCH:
                return count
            position = batch[-1].position or position

    def handle(self, stored: StoredEvent) -> None:
        if isinstance(stored.event, WebhookSubscription.Event):
            self._apply(stored)
        self._thread.notify()

    def _apply(self, stored: StoredEvent) -> None:
        event, position = stored.event, stored.position or 0
        # Wait for the dispatcher: the follower must not pass an event before it took effect.
        self._thread.submit(lambda _d: self._sync.handle(event, position)).result(SYNC_TIMEOUT)
