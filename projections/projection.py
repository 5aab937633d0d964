"""Base class of every projection (one implementation per read model, any backend)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from projections.events import StoredEvent
from projections.readmodel import ReadModelTx, Table


class Projection(ABC):
    """Turns events into documents of the tables it owns.

    - ``name`` identifies its checkpoint; ``version``: bump it whenever ``handle`` or
      ``tables`` change meaning: the runner then rebuilds it from position 0 at start;
    - ``handle`` is called once per event, in global order, inside the transaction that
      also stores the checkpoint; it sees every event and ignores those it doesn't need.
      It must not do I/O other than through ``tx`` (it is replayed on rebuild).
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[Table, ...]] = ()
    # Relative cost of a rebuild (projections/parallel.py balances processes by it).
    rebuild_weight: ClassVar[float] = 1.0

    @abstractmethod
    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None: ...
