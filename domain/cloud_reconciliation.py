"""What the worker controller found when it compared the cloud with the event store.

The worker controller (``processors/workers/controller.py``) reconciles; this aggregate
only records.

Reconciliation runs at start-up (SPEC §5: VMs tagged as ours are found again after a
restart). A VM the store does not know has no worker stream to record on, so each
reconciliation that changed something is recorded on a stream of its own:
``CloudReconciliation-<uuid>`` with one ``CloudReconciled`` event (what was seen, what was
terminated and why, which workers were declared lost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate
from domain.context import CommandContext


class CloudReconciliation(LrmAggregate):
    class CloudReconciled(LrmAggregate.Created):
        provider: str
        vms_seen: int
        orphans_terminated: list[dict[str, Any]]
        workers_lost: list[dict[str, Any]]

        def apply(self, aggregate: CloudReconciliation) -> None:
            aggregate.provider = self.provider
            aggregate.vms_seen = self.vms_seen
            aggregate.orphans_terminated = list(self.orphans_terminated)
            aggregate.workers_lost = list(self.workers_lost)

    if TYPE_CHECKING:
        provider: str
        vms_seen: int
        orphans_terminated: list[dict[str, Any]]
        workers_lost: list[dict[str, Any]]

    @classmethod
    def record(
        cls,
        ctx: CommandContext,
        *,
        provider: str,
        vms_seen: int,
        orphans_terminated: list[dict[str, Any]],
        workers_lost: list[dict[str, Any]],
    ) -> CloudReconciliation:
        return cls._create_with(
            cls.CloudReconciled, ctx, provider=provider, vms_seen=vms_seen,
            orphans_terminated=orphans_terminated, workers_lost=workers_lost,
        )
