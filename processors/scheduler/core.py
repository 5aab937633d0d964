"""What every phase of the scheduler shares: the store, the view, the caches, and commands
on the view's cached aggregates (saved with a reload-and-retry on conflicts)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from domain.context import CommandContext
from domain.errors import ConcurrencyConflict
from domain.instance import LabletInstance
from domain.placement import CandidateIndex, PlacementDecision, PlacementPipeline, default_pipeline
from processors.scheduler import shortlist
from processors.scheduler.lab_yaml import InstanceLabYaml, LabYamlArtifacts
from processors.scheduler.report import PassReport
from processors.scheduler.settings import SchedulerSettings
from processors.scheduler.view import SchedulerView
from projections.events import StoredEvent
from projections.ports import EventSubscription


class SchedulerStore(Protocol):
    """What the scheduler needs from the event store (``adapters.eventstore.EventStore``)."""

    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def read_all(self, after: int = 0, limit: int = 1000, topics: Any = ()) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...

    def subscribe(self, after: int = 0, topics: Any = ()) -> EventSubscription: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SchedulerCore:
    """The state every phase of a pass shares, and commands on the view's cached aggregates."""

    def __init__(
        self,
        store: SchedulerStore,
        clock: Clock,
        *,
        artifacts: LabYamlArtifacts | None = None,
        pipeline: PlacementPipeline | None = None,
        settings: SchedulerSettings = SchedulerSettings(),
        name: str = "scheduler",
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.name = name
        self.pipeline = pipeline or default_pipeline()
        self.view = SchedulerView(store, store.get, instantiation_lead=settings.instantiation_lead)
        self.lab_yaml = InstanceLabYaml(artifacts, store.get) if artifacts is not None else None
        self._index: CandidateIndex | None = None
        self._index_dirty: set[str] = set()
        # the shortlist's view of the fleet: worker -> (group, entry), groups sorted by fullness
        self._shortlist_ok = shortlist.applicable(self.pipeline)
        self._fleet = shortlist.ShortlistFleet()
        self._fleet_version = 0  # bumped whenever a worker changed
        self._unplaceable: dict[tuple[Any, ...], tuple[int, PlacementDecision, bool]] = {}
        self._tried: dict[str, int] = {}  # queued instance -> capacity epoch of its last failed attempt
        self._recheck: dict[str, datetime] = {}  # instance -> when its in-flight hold may be completed
        self._first_pass = True
        self._last_rescan: datetime | None = None
        self._lock = threading.RLock()  # one pass at a time per scheduler object
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.decision_seconds: deque[float] = deque(maxlen=200_000)
        self.totals = PassReport()
        self.last_error: BaseException | None = None

    # -- commands on cached aggregates -----------------------------------------------------------------
    def _change_instance(self, instance_id: str, command: Callable[[LabletInstance], bool]) -> bool:
        return self._change(self.view.instances, instance_id, command)

    def _release(self, worker_id: str, instance_id: str, reason: str, ctx: CommandContext) -> int:
        released = self._change(self.view.workers, worker_id, lambda w: w.release(instance_id, ctx, reason=reason))
        self.view.reserved_at.pop((worker_id, instance_id), None)
        if released:
            self.view.capacity_epoch += 1  # our own release: the view skips its event in the log
            self.view.retries.room_changed(worker_id)
        return int(released)

    def _change(self, table: dict[str, Any], aggregate_id: str, command: Callable[[Any], bool]) -> bool:
        """Run ``command`` on the cached aggregate and save; on a conflict reload and retry.
        Any failure leaves the cache reloaded (the object may hold unsaved changes)."""
        for _ in range(self.settings.max_attempts):
            aggregate = table[aggregate_id]
            try:
                result = command(aggregate)
                if aggregate.pending_events:
                    self.store.save(aggregate)
            except ConcurrencyConflict:
                self.view.reload(aggregate_id)
                continue
            except BaseException:
                self.view.reload(aggregate_id)
                raise
            self.view.saved(aggregate)
            return bool(result)
        raise ConcurrencyConflict(f"{aggregate_id}: still conflicting after {self.settings.max_attempts} attempts")

    def _ctx(self, now: datetime, cause: str) -> CommandContext:
        return CommandContext(at=now, actor=self.settings.actor, causation_id=f"{self.name}:{cause}")
