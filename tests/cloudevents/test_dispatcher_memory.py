"""Dispatcher core against in-memory ports, a scripted transport and a virtual clock."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.cloudevents.mapping import encode_outbound
from adapters.webhooks.memory import InMemoryCheckpoints, InMemoryDeliveryLog, InMemoryFeed
from processors.dispatcher.dispatcher import Dispatcher, DispatcherConfig
from processors.dispatcher.policy import RetrySchedule
from processors.dispatcher.targets import SubscriptionTarget
from processors.ports.webhooks import AttemptResult
from tests.cloudevents.support import (
    ScriptedTransport,
    VirtualClock,
    check_at_least_once,
    check_receipt_order,
    gadget_events,
    ok,
    sequence_of,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TARGET = SubscriptionTarget(id="WebhookSubscription-1", url="http://receiver/hook", secret=SECRET)
SCHEDULE = RetrySchedule(initial=10, factor=2, max_delay=3600, budget=24 * 3600, max_retry_after=3600)


def make(feed, transport, *, log=None, checkpoints=None, clock=None, on_disable=None, rng_seed=1, **config):
    clock = clock or VirtualClock()
    cfg = DispatcherConfig(schedule=SCHEDULE, poll_interval=10 * 3600, timeout=5, **config)
    return Dispatcher(
        feed=feed,
        encode=encode_outbound,
        transport=transport,
        log=log if log is not None else InMemoryDeliveryLog(),
        checkpoints=checkpoints if checkpoints is not None else InMemoryCheckpoints(),
        on_disable=on_disable,
        config=cfg,
        clock=clock,
        sleep=clock.sleep,
        random=random.Random(rng_seed).random,
    )


async def settle(dispatcher: Dispatcher, max_steps: int = 200_000) -> None:
    """Yield to the loop until every worker is idle (or stopped)."""
    for _ in range(max_steps):
        await asyncio.sleep(0)
        if dispatcher.idle():
            for _ in range(5):  # let a finishing iteration save its checkpoint
                await asyncio.sleep(0)
            return
    raise AssertionError("dispatcher did not settle")


def receipts(transport: ScriptedTransport) -> list[tuple[str, int | None]]:
    return [(c.event_id, c.status) for c in transport.calls]


def test_delivers_everything_in_order_and_checkpoints_the_end():
    events = gadget_events(subjects=4, per_subject=5)
    transport = ScriptedTransport(ok)
    checkpoints = InMemoryCheckpoints()

    async def main():
        d = make(InMemoryFeed(events), transport, checkpoints=checkpoints)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert sorted(c.event_id for c in transport.calls) == sorted(e.id for e in events)
    check_receipt_order(receipts(transport), events, dead=set())
    assert checkpoints.get(TARGET.id) == events[-1].position


def test_failing_event_holds_back_only_its_own_subject():
    events = gadget_events(subjects=3, per_subject=4, seed=3)
    stuck_subject = events[0].subject
    stuck = next(e for e in events if e.subject == stuck_subject)

    def script(event_id, n):
        if event_id == stuck.id and n < 3:
            return AttemptResult(503, 0.01)
        return AttemptResult(200, 0.01)

    transport = ScriptedTransport(script)
    log = InMemoryDeliveryLog()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    first_success = {}
    for i, c in enumerate(transport.calls):
        if c.status == 200:
            first_success.setdefault(c.event_id, i)
    stuck_done = first_success[stuck.id]
    others = [e for e in events if e.subject != stuck_subject]
    # Other subjects finished while the stuck one was still retrying.
    assert all(first_success[e.id] < stuck_done for e in others)
    same = [e for e in events if e.subject == stuck_subject and e.id != stuck.id]
    assert all(first_success[e.id] > stuck_done for e in same)
    check_receipt_order(receipts(transport), events, dead=set())
    attempts = log.attempts(TARGET.id, stuck.id)
    assert [a.outcome for a in attempts] == ["retry", "retry", "retry", "delivered"]
    assert all(a.next_attempt_at is not None for a in attempts[:3])


def test_retry_after_is_honoured_exactly():
    events = gadget_events(subjects=1, per_subject=1)
    transport = ScriptedTransport(
        lambda eid, n: AttemptResult(429, 0.01, retry_after=120) if n == 0 else AttemptResult(200, 0.01)
    )
    log = InMemoryDeliveryLog()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    first, second = log.attempts(TARGET.id)
    assert first.outcome == "retry"
    assert first.next_attempt_at == first.at + timedelta(seconds=120)
    assert second.at >= first.next_attempt_at
    assert second.outcome == "delivered"


def test_410_disables_and_stops_and_keeps_the_checkpoint_before_the_event():
    events = gadget_events(subjects=2, per_subject=3, seed=5)
    gone_at = events[2]
    transport = ScriptedTransport(lambda eid, n: AttemptResult(410, 0.01) if eid == gone_at.id else AttemptResult(200, 0.01))
    disabled: list[tuple[str, str]] = []
    checkpoints = InMemoryCheckpoints()

    async def main():
        d = make(InMemoryFeed(events), transport, checkpoints=checkpoints, on_disable=lambda s, r: disabled.append((s, r)), max_concurrency=1)
        await d.add(TARGET)
        for _ in range(10_000):
            await asyncio.sleep(0)
            if disabled:
                break
        calls_then = len(transport.calls)
        for _ in range(1000):
            await asyncio.sleep(0)
        assert len(transport.calls) == calls_then, "kept sending after 410"
        assert d.subscriptions() == []
        await d.close()

    asyncio.run(main())
    assert disabled and disabled[0][0] == TARGET.id and "410" in disabled[0][1]
    assert checkpoints.get(TARGET.id) < gone_at.position


def test_non_retryable_status_dead_letters_at_once_and_redeliver_sends_it_again():
    events = gadget_events(subjects=1, per_subject=3)
    bad = events[1]
    fixed = {"yes": False}
    transport = ScriptedTransport(
        lambda eid, n: AttemptResult(400, 0.01, error="nope") if eid == bad.id and not fixed["yes"] else AttemptResult(200, 0.01)
    )
    log = InMemoryDeliveryLog()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log)
        await d.add(TARGET)
        await settle(d)
        [dead] = log.dead_letters(TARGET.id)
        assert dead.event_id == bad.id and dead.attempts == 1 and "400" in dead.reason
        # The next event of the subject went on after the dead letter.
        assert [c.event_id for c in transport.calls] == [e.id for e in events]
        fixed["yes"] = True
        assert d.redeliver(TARGET.id, bad.id)
        assert not d.redeliver(TARGET.id, "unknown")
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert transport.calls[-1].event_id == bad.id and transport.calls[-1].status == 200
    assert log.dead_letters(TARGET.id) == []


def test_budget_spent_dead_letters_and_later_events_continue():
    events = gadget_events(subjects=1, per_subject=2)
    first = events[0]
    transport = ScriptedTransport(lambda eid, n: AttemptResult(None, 5.0, error="timeout") if eid == first.id else AttemptResult(200, 0.01))
    log = InMemoryDeliveryLog()
    clock = VirtualClock()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log, clock=clock)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    attempts = log.attempts(TARGET.id, first.id, limit=1000)
    assert attempts[-1].outcome == "dead_letter"
    assert (attempts[-1].at - attempts[0].at).total_seconds() >= SCHEDULE.budget
    assert (attempts[-2].at - attempts[0].at).total_seconds() <= SCHEDULE.budget
    assert len(attempts) > 10  # full jitter over 24 h at <= 1 h apart
    assert transport.calls[-1].event_id == events[1].id


def test_filters_skip_other_types_and_subjects():
    events = gadget_events(subjects=3, per_subject=3, seed=2)
    wanted_subject = events[0].subject
    target = SubscriptionTarget(
        id="S-filter", url="http://r", secret=SECRET, types=("ccm.gadget.moved",), subjects=(wanted_subject,)
    )
    transport = ScriptedTransport(ok)
    checkpoints = InMemoryCheckpoints()

    async def main():
        d = make(InMemoryFeed(events), transport, checkpoints=checkpoints)
        await d.add(target)
        await settle(d)
        await d.close()

    asyncio.run(main())
    expected = [e.id for e in events if e.subject == wanted_subject and e.type == "ccm.gadget.moved"]
    assert [c.event_id for c in transport.calls] == expected
    assert checkpoints.get("S-filter") == events[-1].position


def test_new_subscription_starts_after_its_start_position_and_replay_resends_exactly_the_rest():
    events = gadget_events(subjects=2, per_subject=4, seed=9)
    transport = ScriptedTransport(ok)
    checkpoints = InMemoryCheckpoints()

    async def main():
        d = make(InMemoryFeed(events), transport, checkpoints=checkpoints)
        await d.add(TARGET, start_position=5)
        await settle(d)
        assert [c.event_id for c in transport.calls] == [e.id for e in events[5:]]
        transport.calls.clear()
        await d.replay(TARGET.id, 2)
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert sorted(c.event_id for c in transport.calls) == sorted(e.id for e in events[2:])
    check_receipt_order(receipts(transport), events[2:], dead=set())


def test_appended_events_are_picked_up_on_notify():
    events = gadget_events(subjects=2, per_subject=3)
    feed = InMemoryFeed(events[:3])
    transport = ScriptedTransport(ok)

    async def main():
        d = make(feed, transport)
        await d.add(TARGET)
        await settle(d)
        assert len(transport.calls) == 3
        for e in events[3:]:
            feed.append(e)
        d.notify()
        await asyncio.sleep(0)
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert [c.event_id for c in transport.calls] == [e.id for e in events]


def test_max_pending_bounds_memory_without_losing_events():
    events = gadget_events(subjects=5, per_subject=6, seed=4)
    transport = ScriptedTransport(lambda eid, n: AttemptResult(500, 0.01) if n == 0 else AttemptResult(200, 0.01))

    async def main():
        d = make(InMemoryFeed(events), transport, max_pending=3, batch_size=2)
        await d.add(TARGET)
        worker = d.worker(TARGET.id)
        peak = 0
        for _ in range(100_000):
            await asyncio.sleep(0)
            peak = max(peak, worker.pending)
            if d.idle():
                break
        await d.close()
        # Never more than one batch above the bound.
        assert peak <= 3 + 2

    asyncio.run(main())
    check_at_least_once(receipts(transport), events, dead=set())
    check_receipt_order(receipts(transport), events, dead=set())


# -- property: random failure schedules, with and without a crash -----------------------

OUTCOMES = st.sampled_from(["ok", "500", "timeout", "429", "400", "503ra"])


def result_of(kind: str) -> AttemptResult:
    return {
        "ok": AttemptResult(200, 0.01),
        "500": AttemptResult(500, 0.01),
        "timeout": AttemptResult(None, 5.0, error="timeout"),
        "429": AttemptResult(429, 0.01, retry_after=30),
        "400": AttemptResult(400, 0.01),
        "503ra": AttemptResult(503, 0.01, retry_after=4000),  # capped to max_retry_after
    }[kind]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subjects=st.integers(1, 4),
    per_subject=st.integers(1, 5),
    seed=st.integers(0, 1000),
    schedule=st.lists(st.lists(OUTCOMES, max_size=6), min_size=1, max_size=20),
    crash_after=st.one_of(st.none(), st.integers(0, 30)),
    concurrency=st.integers(1, 4),
)
def test_at_least_once_and_per_subject_order_under_random_failures(
    subjects, per_subject, seed, schedule, crash_after, concurrency
):
    events = gadget_events(subjects, per_subject, seed)
    index = {e.id: i for i, e in enumerate(events)}

    def script(event_id, n):
        plan = schedule[index[event_id] % len(schedule)]
        return result_of(plan[n] if n < len(plan) else "ok")

    transport = ScriptedTransport(script)
    log, checkpoints, clock = InMemoryDeliveryLog(), InMemoryCheckpoints(), VirtualClock()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log, checkpoints=checkpoints, clock=clock, max_concurrency=concurrency)
        await d.add(TARGET)
        if crash_after is not None:
            for _ in range(100_000):
                await asyncio.sleep(0)
                if len(transport.calls) >= crash_after or d.idle():
                    break
            await d.close()  # in-flight attempts are abandoned mid-way
            d = make(InMemoryFeed(events), transport, log=log, checkpoints=checkpoints, clock=clock, max_concurrency=concurrency)
            await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    dead = {x.event_id for x in log.dead_letters(TARGET.id, limit=10_000)}
    delivered = {c.event_id for c in transport.calls if c.status == 200}
    check_at_least_once(receipts(transport), events, dead)
    check_receipt_order(receipts(transport), events, dead)
    assert checkpoints.get(TARGET.id) == events[-1].position
    # Whatever the receiver never accepted is a dead letter (a dead letter may also have been
    # accepted later: re-sent after the crash because the checkpoint was still below it).
    assert {e.id for e in events} - delivered <= dead
    # Per subject, within one run, attempts never go back to an earlier version.
    by_subject = defaultdict(list)
    seq = {e.id: (e.subject, sequence_of(e)) for e in events}
    for a in log.attempts(TARGET.id, limit=1 << 30):
        by_subject[a.subject].append(seq[a.event_id][1])
    if crash_after is None:
        for versions in by_subject.values():
            assert versions == sorted(versions)


def test_a_broken_transport_is_recorded_as_an_error_not_a_crash():
    events = gadget_events(subjects=1, per_subject=1)

    def script(eid, n):
        if n == 0:
            raise RuntimeError("bug in transport")
        return AttemptResult(200, 0.01)

    transport = ScriptedTransport(script)
    log = InMemoryDeliveryLog()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    first, second = log.attempts(TARGET.id)
    assert first.outcome == "retry" and "RuntimeError" in first.error
    assert second.outcome == "delivered"


@pytest.mark.parametrize("crash", [False, True])
def test_redelivery_mark_survives_a_restart(crash):
    events = gadget_events(subjects=1, per_subject=2)
    bad = events[0]
    state = {"fixed": False}
    transport = ScriptedTransport(
        lambda eid, n: AttemptResult(404, 0.01) if eid == bad.id and not state["fixed"] else AttemptResult(200, 0.01)
    )
    log, checkpoints = InMemoryDeliveryLog(), InMemoryCheckpoints()

    async def main():
        d = make(InMemoryFeed(events), transport, log=log, checkpoints=checkpoints)
        await d.add(TARGET)
        await settle(d)
        state["fixed"] = True
        if crash:
            await d.close()
            assert log.redeliver(TARGET.id, bad.id) is not None  # marked while no dispatcher runs
            d = make(InMemoryFeed(events), transport, log=log, checkpoints=checkpoints)
            await d.add(TARGET)
        else:
            d.redeliver(TARGET.id, bad.id)
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert log.dead_letters() == []
    assert transport.calls[-1].event_id == bad.id and transport.calls[-1].status == 200


def test_a_failing_delivery_log_restarts_the_worker_from_its_checkpoint():
    events = gadget_events(subjects=2, per_subject=3)

    class FlakyLog(InMemoryDeliveryLog):
        failures = 2

        def record_attempt(self, attempt):
            if FlakyLog.failures:
                FlakyLog.failures -= 1
                raise OSError("database is locked")
            super().record_attempt(attempt)

    transport = ScriptedTransport(ok)
    checkpoints = InMemoryCheckpoints()

    async def main():
        d = make(InMemoryFeed(events), transport, log=FlakyLog(), checkpoints=checkpoints)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    check_at_least_once(receipts(transport), events, dead=set())
    check_receipt_order(receipts(transport), events, dead=set())
    assert checkpoints.get(TARGET.id) == events[-1].position


def test_the_feed_is_polled_not_read_after_every_attempt():
    events = gadget_events(subjects=1, per_subject=20)

    class CountingFeed(InMemoryFeed):
        reads = 0

        async def read_after(self, position, limit):
            CountingFeed.reads += 1
            return await super().read_after(position, limit)

    transport = ScriptedTransport(ok)

    async def main():
        d = make(CountingFeed(events), transport)
        await d.add(TARGET)
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert len(transport.calls) == 20
    assert CountingFeed.reads <= 2


def test_attempts_keep_to_the_rate_the_receiver_granted():
    """WebHook-Allowed-Rate 2/min: five events of five subjects start two per minute."""
    from dataclasses import replace

    events = gadget_events(subjects=5, per_subject=1)
    transport = ScriptedTransport(ok)
    clock = VirtualClock()
    started_at = []

    async def deliver(request, *, timeout):  # noqa: ANN001, ANN202
        started_at.append(clock.now)
        return await ScriptedTransport.deliver(transport, request, timeout=timeout)

    transport.deliver = deliver  # type: ignore[method-assign]

    async def main():
        d = make(InMemoryFeed(events), transport, clock=clock)
        await d.add(replace(TARGET, allowed_rate=2))
        await settle(d)
        await d.close()

    asyncio.run(main())
    assert len(transport.calls) == 5
    minutes = [int((t - started_at[0]).total_seconds() // 60) for t in started_at]
    assert minutes == [0, 0, 1, 1, 2]


def test_rate_gate_counts_a_sliding_minute():
    from processors.dispatcher.pacing import RateGate
    from tests.cloudevents.support import T0

    gate = RateGate(2)
    gate.started(T0)
    gate.started(T0 + timedelta(seconds=30))
    assert gate.wait(T0 + timedelta(seconds=40)) == 20.0
    assert gate.wait(T0 + timedelta(seconds=60)) == 0.0
    assert RateGate(None).wait(T0) == 0.0
    with pytest.raises(ValueError):
        RateGate(0)
