"""The CloudEvent dispatcher: follows the event feed and delivers to every subscription.

Guarantees and how they are kept:

- at-least-once: a subscription's checkpoint only moves past an event once it is
  finished (delivered, filtered out or dead-lettered), and it is the lowest unfinished
  position minus one. After a crash everything after the checkpoint is sent again,
  with the same ``webhook-id`` (the event id): duplicates, never losses.
- ordered per subject: each subscription keeps one FIFO queue per subject and only
  ever attempts the head of a queue. A failing event holds back the later events of
  the same subject, never those of other subjects.
- every attempt is written to the DeliveryLog before the decision is acted on.

One ``SubscriptionWorker`` task per enabled subscription; the ``Dispatcher`` owns them.
All methods must be called on the dispatcher's event loop (``DispatcherThread`` in
``processors.dispatcher.thread`` does that from other threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random as _random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from processors.dispatcher.pacing import RateGate
from processors.dispatcher.policy import Decision, RetrySchedule, decide
from processors.dispatcher.targets import SubscriptionTarget
from processors.ports.webhooks import (
    AttemptResult,
    Clock,
    DeadLetter,
    DeliveryAttempt,
    DeliveryLog,
    EncodedMessage,
    Encoder,
    EventFeed,
    OutboundEvent,
    Sleep,
    SubscriptionCheckpoints,
    WebhookRequest,
    WebhookTransport,
)

logger = logging.getLogger(__name__)

OnDisable = Callable[[str, str], Awaitable[None] | None]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class DispatcherConfig:
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    timeout: float = 15.0  # per request
    batch_size: int = 100  # events read from the feed at a time
    max_pending: int = 10_000  # per subscription, in memory; reading pauses above it
    max_concurrency: int = 16  # attempts in flight per subscription (different subjects)
    poll_interval: float = 1.0  # feed polling when caught up (notify() wakes earlier)


@dataclass
class _Pending:
    event: OutboundEvent
    message: EncodedMessage | None = None
    redelivery: bool = False
    attempts: int = 0
    first_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None  # None: due now


@dataclass
class _Deps:
    feed: EventFeed
    encode: Encoder
    transport: WebhookTransport
    log: DeliveryLog
    checkpoints: SubscriptionCheckpoints
    on_disable: OnDisable | None
    clock: Clock
    sleep: Sleep
    random: Callable[[], float]
    config: DispatcherConfig


class SubscriptionWorker:
    """Delivers the feed to one subscription until stopped or disabled by a 410."""

    def __init__(self, target: SubscriptionTarget, deps: _Deps, start_position: int = 0) -> None:
        self.target = target
        self._deps = deps
        self._start_position = start_position
        self._queues: dict[str, deque[_Pending]] = {}
        self._in_flight: dict[asyncio.Task[AttemptResult], _Pending] = {}
        self._read_position = 0
        self._saved_checkpoint = -1
        self._caught_up = False
        self._next_poll_at: datetime | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.disabled_reason: str | None = None
        self._gate = RateGate(target.allowed_rate)  # the rate the receiver granted

    # -- control --------------------------------------------------------------

    def wake(self) -> None:
        """New events may exist: read the feed now instead of at the next poll."""
        self._caught_up = False
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def add_redelivery(self, dead_letter: DeadLetter) -> None:
        self._enqueue(_dead_letter_item(dead_letter))
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopping

    @property
    def start_position(self) -> int:
        return self._start_position

    @property
    def idle(self) -> bool:
        """Caught up with the feed and nothing left to send."""
        return self._caught_up and not self._queues

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    # -- main loop ------------------------------------------------------------

    async def run(self) -> None:
        deps, sid = self._deps, self.target.id
        checkpoint = deps.checkpoints.get(sid)
        if checkpoint is None:
            checkpoint = self._start_position
            deps.checkpoints.set(sid, checkpoint)
        self._read_position = self._saved_checkpoint = checkpoint
        for dead_letter in deps.log.redeliveries(sid):
            self._enqueue(_dead_letter_item(dead_letter))
        try:
            while not self._stopping:
                await self._fill()
                self._start_due()
                await self._wait()
                self._finish_done()
                self._save_checkpoint()
        finally:
            for task in self._in_flight:
                task.cancel()
            # An interrupted attempt is simply not recorded: it is sent again later.
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            self._in_flight.clear()

    async def _fill(self) -> None:
        deps = self._deps
        if self._caught_up and self._next_poll_at is not None and deps.clock() < self._next_poll_at:
            return  # nothing new was announced (wake) and the poll interval has not passed
        while self.pending < deps.config.max_pending:
            try:
                events = await deps.feed.read_after(self._read_position, deps.config.batch_size)
            except Exception:
                logger.exception("reading the event feed failed; retrying", extra={"subscription": self.target.id})
                self._caught_up = True
                self._next_poll_at = deps.clock() + timedelta(seconds=deps.config.poll_interval)
                return
            for event in events:
                if self.target.matches(event):
                    self._enqueue(_Pending(event))
                self._read_position = max(self._read_position, event.position)
            self._caught_up = len(events) < deps.config.batch_size
            if self._caught_up:
                self._next_poll_at = deps.clock() + timedelta(seconds=deps.config.poll_interval)
                return

    def _enqueue(self, item: _Pending) -> None:
        self._queues.setdefault(item.event.subject, deque()).append(item)

    def _start_due(self) -> None:
        now = self._deps.clock()
        busy = {item.event.subject for item in self._in_flight.values()}
        for subject, queue in self._queues.items():
            if len(self._in_flight) >= self._deps.config.max_concurrency:
                return
            head = queue[0]
            if subject in busy or (head.next_attempt_at is not None and head.next_attempt_at > now):
                continue
            if self._gate.wait(now) > 0:
                return  # over the receiver's granted rate: the next start waits (``_next_delay``)
            self._gate.started(now)
            if head.first_attempt_at is None:
                head.first_attempt_at = now
            if head.message is None:
                head.message = self._deps.encode(head.event, self.target.mode)
            task = asyncio.ensure_future(self._attempt(head))
            self._in_flight[task] = head

    async def _attempt(self, item: _Pending) -> AttemptResult:
        assert item.message is not None
        target = self.target
        request = WebhookRequest(
            target.url, item.event.id, item.message, target.secret,
            extra_secrets=target.extra_secrets(self._deps.clock()), auth_token=target.auth_token,
        )
        try:
            return await self._deps.transport.deliver(request, timeout=self._deps.config.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a transport bug must not kill the worker
            return AttemptResult(status=None, latency=0.0, error=f"{type(exc).__name__}: {exc}")

    async def _wait(self) -> None:
        """Until an attempt finishes, a retry falls due, new events may exist, or we are woken."""
        if self._stopping:
            return
        delay = self._next_delay()
        if delay == 0.0 and not self._in_flight:
            await asyncio.sleep(0)  # let other tasks run between busy iterations
            return
        waiters: set[asyncio.Future[object]] = set(self._in_flight)  # type: ignore[arg-type]
        wake = asyncio.ensure_future(self._wake.wait())
        waiters.add(wake)  # type: ignore[arg-type]
        sleeper = None
        if delay is not None:
            sleeper = asyncio.ensure_future(self._deps.sleep(delay))
            waiters.add(sleeper)  # type: ignore[arg-type]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for helper in (wake, sleeper):
                if helper is not None and not helper.done():
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
        self._wake.clear()

    def _next_delay(self) -> float | None:
        """Seconds until there is something to start; None: only in-flight work to wait for."""
        if not self._caught_up and self.pending < self._deps.config.max_pending:
            return 0.0
        now = self._deps.clock()
        busy = {item.event.subject for item in self._in_flight.values()}
        due: list[float] = []
        if len(self._in_flight) < self._deps.config.max_concurrency:
            gate = self._gate.wait(now)
            for subject, queue in self._queues.items():
                if subject in busy:
                    continue
                at = queue[0].next_attempt_at
                due.append(max(gate, 0.0 if at is None else max((at - now).total_seconds(), 0.0)))
        if not self._in_flight and self.pending < self._deps.config.max_pending:
            # While attempts are in flight their completion wakes us; polling can wait.
            poll_at = self._next_poll_at
            due.append(self._deps.config.poll_interval if poll_at is None else max((poll_at - now).total_seconds(), 0.0))
        return min(due) if due else None

    def _finish_done(self) -> None:
        for task in [t for t in self._in_flight if t.done()]:
            item = self._in_flight.pop(task)
            self._handle(item, task.result())

    def _handle(self, item: _Pending, result: AttemptResult) -> None:
        deps, event = self._deps, item.event
        now = deps.clock()
        item.attempts += 1
        assert item.first_attempt_at is not None
        decision: Decision = decide(
            result,
            attempt=item.attempts,
            first_attempt_at=item.first_attempt_at,
            now=now,
            schedule=deps.config.schedule,
            random=deps.random,
        )
        deps.log.record_attempt(
            DeliveryAttempt(
                subscription_id=self.target.id,
                event_id=event.id,
                position=event.position,
                subject=event.subject,
                attempt=item.attempts,
                at=now,
                status=result.status,
                latency=result.latency,
                error=result.error,
                outcome=decision.outcome,
                next_attempt_at=decision.next_attempt_at,
            )
        )
        if decision.outcome == "retry":
            item.next_attempt_at = decision.next_attempt_at
            return
        if decision.outcome == "disable":
            self.disabled_reason = decision.reason
            self.stop()
            return
        if decision.outcome == "delivered":
            if item.redelivery:
                deps.log.resolve_dead_letter(self.target.id, event.id)
        else:
            assert item.message is not None
            deps.log.add_dead_letter(
                DeadLetter(
                    subscription_id=self.target.id,
                    event_id=event.id,
                    position=event.position,
                    subject=event.subject,
                    type=event.type,
                    reason=decision.reason,
                    attempts=item.attempts,
                    at=now,
                    message=item.message,
                )
            )
            logger.warning(
                "webhook event dead-lettered",
                extra={"subscription": self.target.id, "event_id": event.id, "reason": decision.reason},
            )
        queue = self._queues[event.subject]
        queue.popleft()
        if not queue:
            del self._queues[event.subject]

    def _save_checkpoint(self) -> None:
        # Positions only grow along a subject queue (feed order), so the lowest unfinished
        # position is among the first non-redelivery item of each queue: O(subjects).
        lowest = None
        for queue in self._queues.values():
            for item in queue:
                if not item.redelivery:
                    if lowest is None or item.event.position < lowest:
                        lowest = item.event.position
                    break
        checkpoint = lowest - 1 if lowest is not None else self._read_position
        if checkpoint != self._saved_checkpoint:
            self._deps.checkpoints.set(self.target.id, checkpoint)
            self._saved_checkpoint = checkpoint


def _dead_letter_item(dead_letter: DeadLetter) -> _Pending:
    event = OutboundEvent(dead_letter.position, dead_letter.event_id, dead_letter.type, dead_letter.subject)
    return _Pending(event, message=dead_letter.message, redelivery=True)


class Dispatcher:
    """Runs one SubscriptionWorker per enabled subscription."""

    def __init__(
        self,
        *,
        feed: EventFeed,
        encode: Encoder,
        transport: WebhookTransport,
        log: DeliveryLog,
        checkpoints: SubscriptionCheckpoints,
        on_disable: OnDisable | None = None,
        config: DispatcherConfig | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._deps = _Deps(
            feed, encode, transport, log, checkpoints, on_disable, clock, sleep, random, config or DispatcherConfig()
        )
        self._workers: dict[str, tuple[SubscriptionWorker, asyncio.Task[None]]] = {}
        self._targets: dict[str, SubscriptionTarget] = {}

    @property
    def log(self) -> DeliveryLog:
        return self._deps.log

    def subscriptions(self) -> list[str]:
        return list(self._workers)

    def worker(self, subscription_id: str) -> SubscriptionWorker | None:
        entry = self._workers.get(subscription_id)
        return entry[0] if entry else None

    async def add(self, target: SubscriptionTarget, start_position: int = 0) -> None:
        """Start (or restart with new settings) delivery to ``target``.

        A subscription seen for the first time starts after ``start_position`` (the
        position of its ``SubscriptionCreated`` event, so it gets only newer events);
        a known one continues from its checkpoint.
        """
        if running := self._workers.get(target.id):
            if self._targets.get(target.id) == target and not running[1].done():
                return
            await self.remove(target.id)
        self._targets[target.id] = target
        worker = SubscriptionWorker(target, self._deps, start_position)
        task = asyncio.ensure_future(self._run_worker(worker))
        self._workers[target.id] = (worker, task)

    async def remove(self, subscription_id: str, *, forget: bool = False) -> None:
        """Stop delivering (disabled or deleted). ``forget`` also drops the checkpoint."""
        entry = self._workers.pop(subscription_id, None)
        self._targets.pop(subscription_id, None)
        if entry:
            worker, task = entry
            worker.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if forget:
            self._deps.checkpoints.delete(subscription_id)

    async def replay(self, subscription_id: str, from_position: int) -> None:
        """Re-send every matching event with position > ``from_position``."""
        target = self._targets.get(subscription_id)
        if target is not None:
            await self.remove(subscription_id)
        self._deps.checkpoints.set(subscription_id, from_position)
        if target is not None:
            await self.add(target)

    def redeliver(self, subscription_id: str, event_id: str) -> bool:
        """Send a dead letter again (after the receiver is fixed). False if there is none."""
        dead_letter = self._deps.log.redeliver(subscription_id, event_id)
        if dead_letter is None:
            return False
        entry = self._workers.get(subscription_id)
        if entry:
            entry[0].add_redelivery(dead_letter)
        # Without a running worker, the mark survives and the next start picks it up.
        return True

    def notify(self) -> None:
        """New events were appended: stop waiting for the poll interval."""
        for worker, _ in self._workers.values():
            worker.wake()

    def idle(self) -> bool:
        return all(worker.idle for worker, _ in self._workers.values())

    async def close(self) -> None:
        """Stop every worker; in-flight attempts are abandoned (and re-sent after a restart)."""
        entries = list(self._workers.values())
        self._workers.clear()
        self._targets.clear()
        for worker, _ in entries:
            worker.stop()
        await asyncio.gather(*(task for _, task in entries), return_exceptions=True)

    async def _run_worker(self, worker: SubscriptionWorker) -> None:
        sid, failures = worker.target.id, 0
        while True:
            try:
                await worker.run()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                # E.g. the delivery log's database is unreachable: start again from the
                # checkpoint after a pause rather than stop delivering for good.
                failures += 1
                logger.exception("webhook worker crashed; restarting", extra={"subscription": sid})
                await self._deps.sleep(min(60.0, 2.0**failures))
                current = self._workers.get(sid)
                if current is None or current[0] is not worker or worker.stopped:
                    return
                worker = SubscriptionWorker(worker.target, self._deps, worker.start_position)
                self._workers[sid] = (worker, current[1])
        if worker.disabled_reason is not None:
            if self._workers.get(worker.target.id, (None,))[0] is worker:
                del self._workers[worker.target.id]
                self._targets.pop(worker.target.id, None)
            on_disable = self._deps.on_disable
            if on_disable is not None:
                outcome = on_disable(worker.target.id, worker.disabled_reason)
                if inspect.isawaitable(outcome):
                    await outcome
