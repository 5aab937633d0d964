"""Base class of every projection (one implementation per read model, any backend)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from projections.events import StoredEvent
from projections.readmodel import ReadModelTx, Table


class EventFilter(dict[type, bool]):
    """``filter[type(event)]``: whether a projection handles events of that class.

    Resolved once per concrete event class (``issubclass`` against the projection's
    ``handled_events``), then a plain dict hit: the applier asks it for every event of a
    batch and every projection, so the 10 read models do not each make a Python call (and
    an ``isinstance`` test) per event only to ignore most of them.
    """

    def __init__(self, handled: tuple[type, ...] | None) -> None:
        super().__init__()
        self.handled = handled

    def __missing__(self, event_type: type) -> bool:
        wanted = self.handled is None or issubclass(event_type, self.handled)
        self[event_type] = wanted
        return wanted


class Projection(ABC):
    """Turns events into documents of the tables it owns.

    - ``name`` identifies its checkpoint; ``version``: bump it whenever ``handle`` or
      ``tables`` change meaning: the runner then rebuilds it from position 0 at start;
    - ``handle`` is called once per event, in global order, inside the transaction that
      also stores the checkpoint; it ignores the events it does not need. It must not do
      I/O other than through ``tx`` (it is replayed on rebuild);
    - ``handled_events``: the event classes ``handle`` does anything with (None: it may
      need any event). The runner hands it only events of (subclasses of) these classes;
      others may still be given to it directly, and it ignores them.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[Table, ...]] = ()
    handled_events: ClassVar[tuple[type, ...] | None] = None
    # Relative cost of a rebuild (projections/parallel.py balances processes by it): the
    # read models set theirs from `scripts/bench projections --each` (CPU beyond decoding).
    rebuild_weight: ClassVar[float] = 1.0

    @abstractmethod
    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None: ...

    def event_filter(self) -> EventFilter:
        """This projection's ``EventFilter`` (one per instance, filled as classes are met)."""
        found = self.__dict__.get("_event_filter")
        if found is None or found.handled is not self.handled_events:
            found = self.__dict__["_event_filter"] = EventFilter(self.handled_events)
        return found
