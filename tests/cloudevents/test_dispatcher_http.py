"""The dispatcher on its own thread, through the httpx sender, against a real HTTP receiver."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from standardwebhooks import Webhook

from adapters.cloudevents.mapping import encode_outbound
from adapters.cloudevents.parsing import parse_http
from adapters.webhooks.memory import InMemoryFeed
from adapters.webhooks.sender import HttpWebhookSender
from adapters.webhooks.signing import generate_secret
from adapters.webhooks.sql import SqlWebhookStore
from processors.dispatcher.dispatcher import Dispatcher, DispatcherConfig
from processors.dispatcher.policy import RetrySchedule
from processors.dispatcher.targets import SubscriptionTarget
from processors.dispatcher.thread import DispatcherThread
from tests.cloudevents.support import check_at_least_once, check_receipt_order, gadget_events, sequence_of

FAST = RetrySchedule(initial=0.01, factor=2, max_delay=0.05, budget=60, max_retry_after=1.0)
SECRET = generate_secret()


def target(receiver, mode="structured", path="/hook", **kw):
    return SubscriptionTarget(id="WebhookSubscription-http", url=receiver.url(path), secret=SECRET, mode=mode, **kw)


@pytest.fixture
def store(tmp_path):
    s = SqlWebhookStore.sqlite(str(tmp_path / "webhooks.db"))
    yield s
    s.close()


def start(feed, store, tgt, *, schedule=FAST, on_disable=None, start_position=0, poll_interval=0.05):
    sender: list[HttpWebhookSender] = []

    def factory():
        sender.append(HttpWebhookSender())
        return Dispatcher(
            feed=feed,
            encode=encode_outbound,
            transport=sender[0],
            log=store,
            checkpoints=store,
            on_disable=on_disable,
            config=DispatcherConfig(schedule=schedule, timeout=0.3, poll_interval=poll_interval, max_concurrency=4),
        )

    async def close_sender():
        await sender[0].aclose()

    thread = DispatcherThread(factory, on_stop=close_sender)
    thread.start()
    thread.submit(lambda d: d.add(tgt, start_position=start_position)).result(5)
    return thread


def receipts(receiver):
    with receiver.lock:
        return [(r.headers["webhook-id"], r.status) for r in receiver.requests]


def test_signed_structured_delivery_in_order(receiver, store):
    events = gadget_events(subjects=3, per_subject=4, seed=1)
    thread = start(InMemoryFeed(events), store, target(receiver))
    try:
        receiver.wait_for(lambda: len(receiver.ok()) == len(events))
        receiver.wait_for(lambda: store.get(target(receiver).id) == events[-1].position)
    finally:
        thread.stop()
    by_id = {e.id: e for e in events}
    for r in receiver.requests:
        Webhook(SECRET).verify(r.body, r.headers)  # raises if the signature is wrong
        assert r.headers["content-type"] == "application/cloudevents+json"
        [ce] = parse_http(r.headers, r.body).events
        assert ce.get_id() == r.headers["webhook-id"]
        assert ce.get_type() == by_id[ce.get_id()].type
        assert ce.get_extension("position") == str(by_id[ce.get_id()].position)
    check_receipt_order(receipts(receiver), events, dead=set())
    assert all(a.outcome == "delivered" and a.status == 200 for a in store.attempts(target(receiver).id, limit=100))


def test_binary_mode_is_signed_over_the_data(receiver, store):
    events = gadget_events(subjects=1, per_subject=2)
    thread = start(InMemoryFeed(events), store, target(receiver, mode="binary"))
    try:
        receiver.wait_for(lambda: len(receiver.ok()) == 2)
    finally:
        thread.stop()
    for r, event in zip(receiver.requests, events):
        assert Webhook(SECRET).verify(r.body, r.headers) == event.payload.get_data()
        assert r.headers["ce-id"] == r.headers["webhook-id"] == event.id
        assert r.headers["ce-sequence"] == str(sequence_of(event))
        assert r.headers["content-type"] == "application/json"


def test_order_per_subject_holds_under_500s_timeouts_and_429s(receiver, store):
    events = gadget_events(subjects=3, per_subject=4, seed=7)
    receiver.respond(events[0].id, 500, "hang", 503)
    receiver.respond(events[4].id, ("retry-after", 429, "0"), 502)
    receiver.respond(events[7].id, "hang")
    thread = start(InMemoryFeed(events), store, target(receiver))
    try:
        receiver.wait_for(lambda: {e.id for e in events} <= {r.headers["webhook-id"] for r in receiver.ok()})
        receiver.wait_for(lambda: store.get(target(receiver).id) == events[-1].position)
    finally:
        thread.stop()
    check_at_least_once(receipts(receiver), events, dead=set())
    check_receipt_order(receipts(receiver), events, dead=set())
    attempts = store.attempts(target(receiver).id, events[0].id)
    assert [a.status for a in attempts] == [500, None, 503, 200]
    assert "timeout" in attempts[1].error
    assert [a.outcome for a in attempts] == ["retry", "retry", "retry", "delivered"]


def test_retry_after_is_honoured(receiver, store):
    events = gadget_events(subjects=1, per_subject=1)
    receiver.respond(events[0].id, ("retry-after", 429, "1"))
    thread = start(InMemoryFeed(events), store, target(receiver))
    try:
        receiver.wait_for(lambda: len(receiver.ok()) == 1)
    finally:
        thread.stop()
    first, second = receiver.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95  # never earlier than the receiver asked
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body


def test_410_disables_the_subscription_and_stops(receiver, store):
    events = gadget_events(subjects=1, per_subject=3)
    receiver.respond(events[1].id, 410)
    disabled = []
    thread = start(InMemoryFeed(events), store, target(receiver), on_disable=lambda s, r: disabled.append((s, r)))
    try:
        receiver.wait_for(lambda: disabled)
        time.sleep(0.2)
        assert thread.call(lambda d: d.subscriptions()) == []
    finally:
        thread.stop()
    assert [r.status for r in receiver.requests] == [200, 410]
    assert store.get(target(receiver).id) == events[0].position


def test_redirects_are_not_followed(receiver, store):
    events = gadget_events(subjects=1, per_subject=1)
    receiver.respond(events[0].id, ("redirect", receiver.url("/elsewhere")))
    thread = start(InMemoryFeed(events), store, target(receiver))
    try:
        receiver.wait_for(lambda: store.dead_letters())
    finally:
        thread.stop()
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert "307" in store.dead_letters()[0].reason


def test_dead_letter_after_the_budget_then_redeliver(receiver, store):
    events = gadget_events(subjects=1, per_subject=3)
    bad = events[1]
    receiver.always[bad.id] = 503
    schedule = RetrySchedule(initial=0.01, factor=2, max_delay=0.05, budget=0.3)
    thread = start(InMemoryFeed(events), store, target(receiver), schedule=schedule)
    try:
        receiver.wait_for(lambda: len(receiver.ok()) == 2)
        [dead] = store.dead_letters()
        assert dead.event_id == bad.id and "budget" in dead.reason and dead.attempts >= 3
        # Later events of the same subject were delivered after the dead letter.
        assert [r.headers["webhook-id"] for r in receiver.ok()] == [events[0].id, events[2].id]
        del receiver.always[bad.id]
        assert thread.call(lambda d: d.redeliver(target(receiver).id, bad.id))
        receiver.wait_for(lambda: len(receiver.ok()) == 3)
        receiver.wait_for(lambda: store.dead_letters() == [])
    finally:
        thread.stop()
    assert receiver.ok()[-1].headers["webhook-id"] == bad.id
    assert store.dead_letters() == []


def test_nothing_lost_or_reordered_across_a_crash_restart(receiver, store):
    events = gadget_events(subjects=4, per_subject=10, seed=11)
    receiver.delay = 0.03  # so the crash surely comes before the end
    for e in events[::7]:
        receiver.respond(e.id, 500)
    feed = InMemoryFeed(events)
    thread = start(feed, store, target(receiver))
    try:
        receiver.wait_for(lambda: len(receiver.ok()) >= 15)
    finally:
        thread.stop()  # abandons in-flight attempts; checkpoint may lag behind deliveries
    crashed_at = len(receiver.requests)
    checkpoint = store.get(target(receiver).id)
    assert checkpoint < events[-1].position
    thread = start(feed, store, target(receiver))
    try:
        receiver.wait_for(lambda: {e.id for e in events} <= {r.headers["webhook-id"] for r in receiver.ok()})
        receiver.wait_for(lambda: store.get(target(receiver).id) == events[-1].position)
    finally:
        thread.stop()
    check_at_least_once(receipts(receiver), events, dead=set())
    check_receipt_order(receipts(receiver), events, dead=set())
    # Duplicates are re-sends of the same message: same id, same bytes.
    bodies = defaultdict(set)
    for r in receiver.requests:
        bodies[r.headers["webhook-id"]].add(r.body)
    assert all(len(b) == 1 for b in bodies.values())
    # After the restart, only events after the checkpoint were sent.
    positions = {e.id: e.position for e in events}
    assert all(positions[r.headers["webhook-id"]] > checkpoint for r in receiver.requests[crashed_at:])


def test_replay_resends_exactly_the_events_after_the_position(receiver, store):
    events = gadget_events(subjects=2, per_subject=5, seed=4)
    tgt = target(receiver, types=("ccm.gadget.moved",))
    thread = start(InMemoryFeed(events), store, tgt)
    try:
        wanted = [e for e in events if e.type == "ccm.gadget.moved"]
        receiver.wait_for(lambda: len(receiver.ok()) == len(wanted))
        receiver.wait_for(lambda: store.get(tgt.id) == events[-1].position)
        receiver.reset()
        thread.submit(lambda d: d.replay(tgt.id, 4)).result(5)
        expected = [e for e in wanted if e.position > 4]
        receiver.wait_for(lambda: len(receiver.ok()) == len(expected))
        time.sleep(0.2)
    finally:
        thread.stop()
    got = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(got) == sorted(e.id for e in expected)
    check_receipt_order(receipts(receiver), expected, dead=set())
    for r in receiver.requests:
        assert json.loads(r.body)["type"] == "ccm.gadget.moved"


def test_sender_reports_error_bodies_and_unreachable_receivers(receiver):
    import asyncio

    from processors.ports.webhooks import EncodedMessage, WebhookRequest

    receiver.respond("m1", 400)
    message = EncodedMessage({"content-type": "application/json"}, b"{}")

    async def main():
        sender = HttpWebhookSender()
        try:
            bad = await sender.deliver(WebhookRequest(receiver.url(), "m1", message, SECRET), timeout=2)
            ok = await sender.deliver(WebhookRequest(receiver.url(), "m2", message, SECRET), timeout=2)
            gone = await sender.deliver(WebhookRequest("http://127.0.0.1:9/hook", "m3", message, SECRET), timeout=2)
        finally:
            await sender.aclose()
        return bad, ok, gone

    bad, ok, gone = asyncio.run(main())
    assert bad.status == 400 and bad.error == "Bad Request" and bad.latency > 0
    assert ok.status == 200 and ok.error is None and ok.retry_after is None
    assert gone.status is None and "ConnectError" in gone.error


def test_notify_from_another_thread_wakes_the_dispatcher(receiver, store):
    events = gadget_events(subjects=2, per_subject=3)
    feed = InMemoryFeed(events[:2])
    # A poll interval longer than the wait below: only notify() can explain a delivery.
    thread = start(feed, store, target(receiver), poll_interval=60)
    try:
        receiver.wait_for(lambda: len(receiver.ok()) == 2)
        for e in events[2:]:
            feed.append(e)
        thread.notify()
        receiver.wait_for(lambda: len(receiver.ok()) == len(events), timeout=10)
    finally:
        thread.stop()
    check_receipt_order(receipts(receiver), events, dead=set())
