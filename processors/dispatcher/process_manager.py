"""Keeps the dispatcher's subscriptions in line with the WebhookSubscription events.

Feed it every event of the log (it ignores the others) with its global position.
Safe to feed the log again from the start after a restart: targets are rebuilt from the
subscription's current state, a new subscription starts after its creation position
only if it has no checkpoint yet, and each replay request is applied once (the position
of the last applied request is kept next to the checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable

from domain.base import DomainEvent
from domain.subscription import WebhookSubscription
from processors.dispatcher.dispatcher import Dispatcher
from processors.dispatcher.targets import SubscriptionTarget
from processors.ports.webhooks import SubscriptionCheckpoints

REPLAY_MARK_SUFFIX = "#replay"

Sub = WebhookSubscription


class SubscriptionSync:
    def __init__(
        self,
        dispatcher: Dispatcher,
        load: Callable[[str], WebhookSubscription],
        checkpoints: SubscriptionCheckpoints,
    ) -> None:
        self._dispatcher = dispatcher
        self._load = load
        self._checkpoints = checkpoints

    async def handle(self, event: DomainEvent, position: int) -> None:
        sid = event.originator_id
        if isinstance(event, Sub.SubscriptionDeleted):
            await self._dispatcher.remove(sid, forget=True)
        elif isinstance(event, Sub.SubscriptionReplayRequested):
            mark = sid + REPLAY_MARK_SUFFIX
            last = self._checkpoints.get(mark)
            if last is None or position > last:
                await self._dispatcher.replay(sid, event.from_position)
                self._checkpoints.set(mark, position)
        elif isinstance(event, (Sub.SubscriptionCreated, Sub.SubscriptionEnabled, Sub.SubscriptionDisabled,
                                Sub.SubscriptionSecretRotated)):
            subscription = self._load(sid)
            target = SubscriptionTarget.from_subscription(subscription)
            if target is None:
                await self._dispatcher.remove(sid)
            else:
                start = position if isinstance(event, Sub.SubscriptionCreated) else 0
                await self._dispatcher.add(target, start_position=start)
