"""Where a projection writes: its live tables, or a shadow copy being rebuilt beside them.

A projection whose version changed (or that an admin rebuilds) is replayed from position 0
into ``<table>__shadow`` tables with checkpoint ``<name>__shadow``, while the live tables
keep serving (frozen at their checkpoint: the old code that kept them is gone). Once the
shadow has caught up with the log, ``ReadModelStore.promote`` swaps the tables and moves
the checkpoint in one transaction, so a reader sees the whole old model or the whole new
one, never a half-built one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.projection import Projection
from projections.readmodel import Table

SHADOW_SUFFIX = "__shadow"


def shadow_table(table: Table) -> Table:
    return Table(f"{table.name}{SHADOW_SUFFIX}", table.indexes, defer_indexes=True)


@dataclass(frozen=True)
class Target:
    """One projection applied under one checkpoint (``name``) into ``tables``."""

    projection: Projection
    shadow: bool = False
    rename: dict[str, str] = field(default_factory=dict)

    @classmethod
    def live(cls, projection: Projection) -> Target:
        return cls(projection)

    @classmethod
    def shadow_of(cls, projection: Projection) -> Target:
        return cls(projection, True, {t.name: shadow_table(t).name for t in projection.tables})

    @property
    def name(self) -> str:
        """The checkpoint (and parked events) this target writes under."""
        return f"{self.projection.name}{SHADOW_SUFFIX}" if self.shadow else self.projection.name

    @property
    def tables(self) -> tuple[Table, ...]:
        if not self.shadow:
            return self.projection.tables
        return tuple(shadow_table(t) for t in self.projection.tables)

    @property
    def version(self) -> int:
        return self.projection.version

    def pairs(self) -> list[tuple[Table, Table]]:
        """(shadow, live) for every table: what ``promote`` swaps."""
        return [(shadow_table(t), t) for t in self.projection.tables]
