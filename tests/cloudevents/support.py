"""Test helpers: a tiny aggregate, event generators, a virtual clock, scripted transports,
and the ordering / at-least-once checks shared by the dispatcher tests."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from adapters.cloudevents.mapping import to_outbound
from domain.base import LrmAggregate
from domain.context import CommandContext
from processors.ports.webhooks import AttemptResult, OutboundEvent, WebhookRequest

SOURCE = "urn:lrm:test"
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)


class Gadget(LrmAggregate):
    class GadgetMade(LrmAggregate.Created):
        colour: str

        def apply(self, aggregate: Gadget) -> None:
            aggregate.colour = self.colour

    class GadgetMoved(LrmAggregate.Event):
        to: str
        at_time: datetime

        def apply(self, aggregate: Gadget) -> None:
            pass

    @classmethod
    def make(cls, ctx: CommandContext, colour: str) -> Gadget:
        return cls._create_with(cls.GadgetMade, ctx, colour=colour)

    def move(self, ctx: CommandContext, to: str) -> None:
        self._record(self.GadgetMoved, ctx, to=to, at_time=ctx.at)


def ctx(at: datetime = T0, actor: str = "tester") -> CommandContext:
    return CommandContext(at=at, actor=actor)


def gadget_events(subjects: int, per_subject: int, seed: int = 0) -> list[OutboundEvent]:
    """Events of ``subjects`` gadgets, interleaved at random, with positions 1..n."""
    rng = random.Random(seed)
    streams = []
    for i in range(subjects):
        gadget = Gadget.make(ctx(T0 + timedelta(seconds=i)), colour=f"c{i}")
        for j in range(per_subject - 1):
            gadget.move(ctx(T0 + timedelta(minutes=j + 1)), to=f"room{j}")
        streams.append(list(gadget.collect_events()))
    order = [i for i, s in enumerate(streams) for _ in s]
    rng.shuffle(order)
    cursors = [0] * subjects
    result = []
    for position, i in enumerate(order, start=1):
        event = streams[i][cursors[i]]
        cursors[i] += 1
        result.append(to_outbound(event, position, source=SOURCE))
    return result


def sequence_of(event: OutboundEvent) -> int:
    return int(event.payload.get_extension("sequence"))


class VirtualClock:
    """Time moves only when someone sleeps, and only once everything else had its turn:
    the sleeper first yields a few times, so instant work racing it (a scripted attempt)
    finishes first and the sleep is cancelled without moving the clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        target = self.now + timedelta(seconds=max(seconds, 0.0))
        for _ in range(20):
            await asyncio.sleep(0)
        self.now = max(self.now, target)


@dataclass
class Call:
    event_id: str
    status: int | None
    url: str


@dataclass
class ScriptedTransport:
    """Answers from a script: ``script(event_id, n)`` -> AttemptResult for call n (0-based)."""

    script: Callable[[str, int], AttemptResult]
    calls: list[Call] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    async def deliver(self, request: WebhookRequest, *, timeout: float) -> AttemptResult:
        n = self.counts[request.message_id]
        self.counts[request.message_id] += 1
        result = self.script(request.message_id, n)
        self.calls.append(Call(request.message_id, result.status, request.url))
        await asyncio.sleep(0)
        return result


def ok(event_id: str, n: int) -> AttemptResult:
    return AttemptResult(200, 0.001)


def check_receipt_order(
    receipts: Iterable[tuple[str, int]], events: list[OutboundEvent], dead: set[str]
) -> None:
    """Receiver-side order: at each successful receipt of (subject, v), every earlier version
    of that subject that was not dead-lettered has already been received successfully."""
    by_id = {e.id: e for e in events}
    versions: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in events:
        versions[e.subject].append((sequence_of(e), e.id))
    received: set[str] = set()
    for event_id, status in receipts:
        if status is None or not 200 <= status < 300:
            continue
        event = by_id[event_id]
        for v, other in versions[event.subject]:
            if v < sequence_of(event) and other not in dead:
                assert other in received, f"{event_id} (v{sequence_of(event)}) arrived before v{v} of {event.subject}"
        received.add(event_id)


def check_at_least_once(receipts: Iterable[tuple[str, int]], events: list[OutboundEvent], dead: set[str]) -> None:
    delivered = {i for i, s in receipts if s is not None and 200 <= s < 300}
    missing = [e.id for e in events if e.id not in delivered and e.id not in dead]
    assert not missing, f"{len(missing)} events neither delivered nor dead-lettered"
