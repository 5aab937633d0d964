"""SubscriptionSync (subscription events -> dispatcher) and DomainEventFeed."""

from __future__ import annotations

import asyncio

from adapters.cloudevents.feed import DomainEventFeed
from adapters.webhooks.memory import InMemoryCheckpoints, InMemoryFeed
from domain.subscription import WebhookSubscription
from processors.dispatcher.process_manager import SubscriptionSync
from tests.cloudevents.support import SOURCE, Gadget, ScriptedTransport, ctx, gadget_events, ok
from tests.cloudevents.test_dispatcher_memory import make, settle

SECRET = "whsec_" + "C" * 32


def test_sync_follows_the_subscription_lifecycle():
    events = gadget_events(subjects=2, per_subject=4, seed=8)
    sub = WebhookSubscription.create(ctx(), url="https://g.example/h", secret=SECRET, owner="g")
    store = {sub.id: sub}
    checkpoints = InMemoryCheckpoints()
    transport = ScriptedTransport(ok)

    async def main():
        d = make(InMemoryFeed(events), transport, checkpoints=checkpoints)
        sync = SubscriptionSync(d, store.__getitem__, checkpoints)
        [created] = sub.collect_events()
        await sync.handle(created, 5)  # created at position 5: only later events
        await settle(d)
        assert [c.event_id for c in transport.calls] == [e.id for e in events[5:]]

        sub.request_replay(ctx(), 2)
        [replay] = sub.collect_events()
        transport.calls.clear()
        await sync.handle(replay, 9)
        await settle(d)
        assert sorted(c.event_id for c in transport.calls) == sorted(e.id for e in events[2:])

        # The log fed again after a restart: neither the creation nor the replay acts twice.
        transport.calls.clear()
        await sync.handle(created, 5)
        await sync.handle(replay, 9)
        await settle(d)
        assert transport.calls == []

        sub.disable(ctx(), "maintenance")
        [disabled] = sub.collect_events()
        await sync.handle(disabled, 10)
        assert d.subscriptions() == []
        sub.enable(ctx())
        [enabled] = sub.collect_events()
        await sync.handle(enabled, 11)
        assert d.subscriptions() == [sub.id]

        sub.delete(ctx())
        [deleted] = sub.collect_events()
        await sync.handle(deleted, 12)
        assert d.subscriptions() == [] and checkpoints.get(sub.id) is None

        # Other events are ignored.
        await sync.handle(Gadget.make(ctx(), "x").collect_events()[0], 13)
        await d.close()

    asyncio.run(main())


def test_domain_event_feed_accepts_sync_and_async_readers():
    gadget = Gadget.make(ctx(), "blue")
    gadget.move(ctx(), "lab")
    rows = list(enumerate(gadget.collect_events(), start=1))

    def read(position, limit):
        return [r for r in rows if r[0] > position][:limit]

    async def aread(position, limit):
        return read(position, limit)

    async def main():
        for reader in (read, aread):
            feed = DomainEventFeed(reader, source=SOURCE)
            out = await feed.read_after(0, 10)
            assert [(o.position, o.type, o.subject) for o in out] == [
                (1, "ccm.gadget.made", gadget.id),
                (2, "ccm.gadget.moved", gadget.id),
            ]
            assert out[1].payload.get_extension("position") == "2"
            assert [o.position for o in await feed.read_after(1, 10)] == [2]
            assert await feed.read_after(2, 10) == []

    asyncio.run(main())
