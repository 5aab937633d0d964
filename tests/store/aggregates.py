"""Test aggregates for the store contract tests (the real domain is written elsewhere)."""

from __future__ import annotations

from datetime import datetime, timezone

from domain.base import LrmAggregate
from domain.context import CommandContext


def ctx(actor: str = "test") -> CommandContext:
    return CommandContext(at=datetime(2026, 1, 1, tzinfo=timezone.utc), actor=actor)


class Counter(LrmAggregate):
    class Opened(LrmAggregate.Created):
        label: str

    class Bumped(LrmAggregate.Event):
        by: int

        def apply(self, aggregate: Counter) -> None:
            aggregate.total += self.by

    class Closed(LrmAggregate.Event):
        def apply(self, aggregate: Counter) -> None:
            aggregate.closed = True

    def __init__(self, label: str) -> None:
        self.label = label
        self.total = 0
        self.closed = False

    @classmethod
    def open(cls, label: str, id: str | None = None) -> Counter:  # noqa: A002
        return cls._create_with(cls.Opened, ctx(), id=id, label=label)

    def bump(self, by: int = 1) -> None:
        self._record(self.Bumped, ctx(), by=by)

    def close(self) -> None:
        self._record(self.Closed, ctx())
