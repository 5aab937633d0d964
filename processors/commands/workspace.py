"""One command, many aggregates, one atomic save.

A command that changes several streams (a class: every seat and the workers they land on;
an extension: the lab, its worker and the labs moved out of its way) must load each stream
once — two copies of the same worker would conflict with each other on save — and save
them all together, so optimistic concurrency refuses the whole change if any stream moved.
"""

from __future__ import annotations

from typing import Any, Protocol


class Store(Protocol):
    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...


class Workspace:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._loaded: dict[str, Any] = {}

    def get(self, aggregate_id: str, version: int | None = None) -> Any:
        """The aggregate, loaded once (later calls return the same object, changes and all)."""
        if version is not None:
            return self.store.get(aggregate_id, version=version)
        if aggregate_id not in self._loaded:
            self._loaded[aggregate_id] = self.store.get(aggregate_id)
        return self._loaded[aggregate_id]

    def add(self, *aggregates: Any) -> None:
        """Aggregates loaded or created elsewhere, saved with the rest."""
        for aggregate in aggregates:
            self._loaded.setdefault(aggregate.id, aggregate)

    def save(self) -> int:
        """Every loaded aggregate's pending events, atomically; the last position."""
        return self.store.save(*self._loaded.values())
