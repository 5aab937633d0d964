"""A clean fleet: CML labs no instance owns are reported, then removed after a grace period;
instances whose CML lab vanished are reported.

Per reachable worker (RUNNING or DRAINING, with an address): list its CML labs; a lab is
owned when a live instance placed on that worker names it (``cml_lab_id``) or carries its
title (the title is the instance id, ``processors/instances/naming.py``: an import not yet
recorded is found that way). Every other lab is an orphan — left by a crash between import
and record, by a finished instance whose teardown failed, or made by hand. It is recorded
when first seen (``OrphanLabFound`` on the worker's ``LabReconciliation`` stream), and after
``grace`` from that record it is deleted from CML and ``OrphanLabRemoved`` says why. A live
instance at or past READY whose ``cml_lab_id`` is not on CML any more is recorded once
(``InstanceLabVanished``, on its timeline since the payload names it).

Runs inside the instance controller's pass (same CML client and loop), level-triggered: a
crash between deleting a lab and recording it re-finds nothing to delete and records the
removal on the next pass (the lab is gone, so it is cleared with that reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.context import CommandContext
from domain.errors import ConcurrencyConflict
from domain.instance import InstanceState, LabletInstance
from domain.lab_reconciliation import LabReconciliation
from domain.worker import Worker, WorkerState
from processors.aggregates import load_or_none
from processors.ports.cml import CmlEndpoint, CmlError, CmlGateway

log = logging.getLogger(__name__)
S = InstanceState
REACHABLE = frozenset({WorkerState.RUNNING, WorkerState.DRAINING})
#: states whose lab must exist on CML (READY .. STOPPED; INSTANTIATING may not have one yet)
HAS_LAB = frozenset({S.READY, S.RUNNING, S.COLLECTING, S.GRADING, S.STOPPING, S.STOPPED})


@dataclass
class LabReconcilerReport:
    workers: int = 0
    orphans: dict[str, list[str]] = field(default_factory=dict)  # worker -> lab ids not owned
    removed: list[tuple[str, str]] = field(default_factory=list)  # (worker, lab id)
    vanished: list[tuple[str, str]] = field(default_factory=list)  # (instance id, lab id)


class LabReconciler:
    def __init__(
        self,
        store: Any,
        cml: CmlGateway,
        endpoint_for: Callable[[str, str], CmlEndpoint],
        live_workers: Callable[[], list[str]],
        placed_on: Callable[[str], list[str]],
        *,
        grace: timedelta = timedelta(minutes=30),
    ) -> None:
        """``placed_on(worker)``: ids of the live instances placed on that worker."""
        self.store = store
        self.cml = cml
        self.endpoint_for = endpoint_for
        self.live_workers = live_workers
        self.placed_on = placed_on
        self.grace = grace

    async def reconcile(self, now: datetime) -> LabReconcilerReport:
        report = LabReconcilerReport()
        try:
            worker_ids = sorted(self.live_workers())
        except Exception as error:  # noqa: BLE001 - read models not ready (yet): next pass
            log.warning("lab reconciliation skipped: cannot list the live workers: %s", error)
            return report
        for worker_id in worker_ids:
            worker = load_or_none(self.store, worker_id, Worker)
            if worker is None or worker.state not in REACHABLE or not worker.ip:
                continue
            report.workers += 1
            try:
                await self._worker(worker, now, report)
            except (CmlError, ConcurrencyConflict) as error:  # tried again on the next pass
                log.warning("lab reconciliation of worker %s failed: %s", worker_id, error)
        return report

    async def _worker(self, worker: Worker, now: datetime, report: LabReconcilerReport) -> None:
        endpoint = self.endpoint_for(worker.id, worker.ip)
        labs = set(await self.cml.list_labs(endpoint))
        ctx = CommandContext(at=now, actor="system:lab-reconciler", causation_id=f"reconcile:{worker.id}")
        record = load_or_none(self.store, LabReconciliation.stream_id_for(worker.id), LabReconciliation)
        owned: set[str] = set()
        vanished: list[tuple[str, str]] = []
        for instance_id in self.placed_on(worker.id):
            instance = load_or_none(self.store, instance_id, LabletInstance)
            if instance is None or not instance.is_live or instance.worker_id != worker.id:
                continue
            if instance.cml_lab_id in labs:
                owned.add(instance.cml_lab_id)
                continue
            titled = await self.cml.find_lab_by_title(endpoint, instance.id)
            if titled is not None:
                owned.add(titled)
            elif instance.cml_lab_id and instance.state in HAS_LAB:
                vanished.append((instance.id, instance.cml_lab_id))
        orphans = sorted(labs - owned)
        if not orphans and not vanished and (record is None or not record.orphans):
            return  # the usual case: nothing to write
        record = record or LabReconciliation.open(worker.id, ctx)
        for lab_id in list(record.orphans):
            if lab_id in owned:
                record.cleared(lab_id, "owned by an instance", ctx)
            elif lab_id not in labs:
                record.cleared(lab_id, "no longer on CML", ctx)
        for lab_id in orphans:
            record.found(lab_id, ctx)
            if now - record.orphans[lab_id] >= self.grace:
                await self.cml.delete_lab(endpoint, lab_id)
                record.removed(lab_id, f"no instance owns it; unowned since {record.orphans[lab_id].isoformat()} "
                                       f"(grace {int(self.grace.total_seconds() // 60)} min)", ctx)
                report.removed.append((worker.id, lab_id))
                log.warning("removed lab %s from worker %s: no instance owns it", lab_id, worker.id)
        for instance_id, lab_id in vanished:
            record.lab_vanished(instance_id, lab_id, ctx)
            report.vanished.append((instance_id, lab_id))
        if record.orphans:
            report.orphans[worker.id] = sorted(record.orphans)
        self.store.save(record)
