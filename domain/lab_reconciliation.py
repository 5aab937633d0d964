"""What the lab reconciler found on one worker's CML: labs no instance owns, and instances
whose lab vanished (one stream per worker, ``named_stream_id("LabReconciliation", worker)``).

An unowned lab (left by a crash between import and record, or made by hand) is recorded
when first seen and removed only after a grace period counted from that record, so a
restart of the reconciler never shortens the grace; the removal is an event with its
reason. A lab that turns out to be owned (an import recorded late) is cleared instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from domain.base import LrmAggregate, named_stream_id
from domain.context import CommandContext


class LabReconciliation(LrmAggregate):
    class LabReconciliationOpened(LrmAggregate.Created):
        worker_id: str

        def apply(self, aggregate: LabReconciliation) -> None:
            aggregate.worker_id = self.worker_id
            aggregate.orphans = {}
            aggregate.vanished = {}

    class OrphanLabFound(LrmAggregate.Event):
        worker_id: str
        lab_id: str

        def apply(self, aggregate: LabReconciliation) -> None:
            aggregate.orphans[self.lab_id] = self.timestamp

    class OrphanLabCleared(LrmAggregate.Event):
        worker_id: str
        lab_id: str
        reason: str

        def apply(self, aggregate: LabReconciliation) -> None:
            aggregate.orphans.pop(self.lab_id, None)

    class OrphanLabRemoved(LrmAggregate.Event):
        worker_id: str
        lab_id: str
        first_seen: datetime
        reason: str

        def apply(self, aggregate: LabReconciliation) -> None:
            aggregate.orphans.pop(self.lab_id, None)

    class InstanceLabVanished(LrmAggregate.Event):
        worker_id: str
        instance_id: str
        lab_id: str

        def apply(self, aggregate: LabReconciliation) -> None:
            aggregate.vanished[self.instance_id] = self.lab_id

    if TYPE_CHECKING:
        worker_id: str
        orphans: dict[str, datetime]
        vanished: dict[str, str]

    @staticmethod
    def stream_id_for(worker_id: str) -> str:
        return named_stream_id("LabReconciliation", worker_id)

    @classmethod
    def open(cls, worker_id: str, ctx: CommandContext) -> LabReconciliation:
        return cls._create_with(cls.LabReconciliationOpened, ctx, id=cls.stream_id_for(worker_id), worker_id=worker_id)

    def found(self, lab_id: str, ctx: CommandContext) -> None:
        if lab_id not in self.orphans:
            self._record(self.OrphanLabFound, ctx, worker_id=self.worker_id, lab_id=lab_id)

    def cleared(self, lab_id: str, reason: str, ctx: CommandContext) -> None:
        if lab_id in self.orphans:
            self._record(self.OrphanLabCleared, ctx, worker_id=self.worker_id, lab_id=lab_id, reason=reason)

    def removed(self, lab_id: str, reason: str, ctx: CommandContext) -> None:
        if lab_id in self.orphans:
            self._record(self.OrphanLabRemoved, ctx, worker_id=self.worker_id, lab_id=lab_id,
                         first_seen=self.orphans[lab_id], reason=reason)

    def lab_vanished(self, instance_id: str, lab_id: str, ctx: CommandContext) -> None:
        if self.vanished.get(instance_id) != lab_id:
            self._record(self.InstanceLabVanished, ctx, worker_id=self.worker_id, instance_id=instance_id,
                         lab_id=lab_id)
