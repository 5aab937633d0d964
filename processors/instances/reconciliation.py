"""Reconciliation: each reachable worker's labs compared with the instances placed on it; the
labs of finished instances deleted, labs no instance accounts for reported."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from processors.instances import naming
from processors.instances.core import GONE, REACHABLE
from processors.ports.cml import CmlEndpoint, CmlError

if TYPE_CHECKING:  # a part of InstanceController: runs with the state ControllerCore sets up
    from processors.instances.core import ControllerCore as _Controller
else:
    _Controller = object

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    workers: int = 0
    deleted: list[tuple[str, str, str]] = field(default_factory=list)  # (worker, lab id, instance id)
    unexplained: dict[str, list[str]] = field(default_factory=dict)  # worker -> lab ids named by no instance
    labs: object = None  # the LabReconcilerReport of processors/reconciler, when it runs


class Reconciliation(_Controller):
    """CML compared with the log, worker by worker."""

    async def reconcile(self) -> ReconcileReport:
        """Compare each reachable worker's labs with the instances placed on it: the lab of a
        finished instance is stopped, wiped and deleted; labs no instance accounts for are
        reported (the port cannot read a lab's title, so they are not touched).

        A lab's title is its instance's id, so this needs no instance loads; title lookups
        for finished instances happen only on a worker that has labs no live instance
        explains. Once a worker is found clean (or gone), its finished instances are
        forgotten: a later termination is cleaned up through the checkpointed log.
        """
        self._last_reconcile = self.clock.now()
        report = ReconcileReport()
        by_worker: dict[str, list[str]] = {}
        for instance_id, worker_id in self._placed.items():
            by_worker.setdefault(worker_id, []).append(instance_id)
        for worker_id, instance_ids in sorted(by_worker.items()):
            self._workers.pop(worker_id, None)  # read afresh: a periodic pass may follow a long quiet
            worker = self._worker_info(worker_id)
            if worker is None or worker.state in GONE:
                self._forget_finished(instance_ids)  # nothing left to reach
                continue
            if worker.state not in REACHABLE or not worker.ip:
                continue  # stopped or booting: looked at when it runs again
            report.workers += 1
            endpoint = self.endpoint_for(worker.worker_id, worker.ip)
            try:
                await self._reconcile_worker(endpoint, sorted(instance_ids), report)
                self._forget_finished(instance_ids)  # checked: none of them has a lab left
            except CmlError as error:
                log.warning("reconciliation of worker %s failed: %s", worker_id, error)
        # Unowned labs and vanished labs (processors/reconciler): same CML client, same pass.
        labs = getattr(self, "lab_reconciler", None)
        if labs is not None:
            report.labs = await labs.reconcile(self.clock.now())
        return report

    async def _reconcile_worker(self, endpoint: CmlEndpoint, instance_ids: list[str], report: ReconcileReport) -> None:
        labs = set(await self.cml.list_labs(endpoint))
        if not labs:
            return
        finished = [i for i in instance_ids if i in self._finished]
        for instance_id in instance_ids:
            if instance_id not in self._finished:
                lab_id = await self.cml.find_lab_by_title(endpoint, naming.title_for(instance_id))
                if lab_id is not None:
                    labs.discard(lab_id)
        if not labs:
            return  # every lab belongs to a live instance: the usual case
        for instance_id in finished:
            lab_id = await self.cml.find_lab_by_title(endpoint, naming.title_for(instance_id))
            while lab_id is not None and lab_id in labs:
                log.warning("deleting lab %s of finished instance %s on worker %s",
                            lab_id, instance_id, endpoint.worker_id)
                await self.cml.delete_lab(endpoint, lab_id)
                labs.discard(lab_id)
                report.deleted.append((endpoint.worker_id, lab_id, instance_id))
                lab_id = await self.cml.find_lab_by_title(endpoint, naming.title_for(instance_id))
        if labs:
            report.unexplained[endpoint.worker_id] = sorted(labs)
            log.warning("worker %s has labs no instance accounts for: %s", endpoint.worker_id, sorted(labs))

    def _forget_finished(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            if instance_id in self._finished and instance_id not in self._cleanup:
                self._placed.pop(instance_id, None)
                self._finished.discard(instance_id)
