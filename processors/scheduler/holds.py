"""Phase 2 of a pass: reservations vs instances. A hold whose instance is PENDING is a placement
that stopped between its two saves: after ``recovery_grace`` it is completed; a hold whose
instance is finished, or placed elsewhere, is released."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from domain.base import event_id
from domain.errors import InvalidInput
from domain.instance import InstanceState, LabletInstance
from processors.scheduler.records import recovered_record
from processors.scheduler.report import PassReport

if TYPE_CHECKING:  # a phase of the Scheduler: runs with the state SchedulerCore sets up
    from processors.scheduler.core import SchedulerCore as _Scheduler
else:
    _Scheduler = object

log = logging.getLogger(__name__)

I = InstanceState  # noqa: E741 - short alias for the state table


class HoldReconciliation(_Scheduler):
    """Phase 2: complete or release holds that no scheduled instance explains."""

    def _reconcile_holds(self, now: datetime, report: PassReport) -> None:
        view = self.view
        ids = set(view.dirty_instances)
        view.dirty_instances.clear()
        ids.update(i for i, at in self._recheck.items() if at <= now)
        for instance_id in sorted(ids):
            self._recheck.pop(instance_id, None)
            self._reconcile(instance_id, now, report)

    def _reconcile(self, instance_id: str, now: datetime, report: PassReport) -> None:
        view = self.view
        instance = view.instances.get(instance_id)
        holders = view.holders(instance_id)
        if instance is None or not holders:
            return
        ctx = self._ctx(now, f"reconcile:{instance_id}")
        if instance.holds_capacity:
            for worker_id in holders:
                if worker_id != instance.worker_id:
                    report.released += self._release(worker_id, instance_id, "superseded", ctx)
            return
        if instance.state is not I.PENDING:  # ARCHIVED or TERMINATED: the hold is over
            for worker_id in holders:
                report.released += self._release(worker_id, instance_id, "instance_finished", ctx)
            return
        usable = [
            w for w in holders
            if self._lost_reason(view.workers[w], now) is None and view.requeued_from.get(instance_id) != w
        ]
        for worker_id in holders:
            if worker_id not in usable[:1]:
                report.released += self._release(worker_id, instance_id, "superseded", ctx)
        if not usable:
            return
        worker_id = usable[0]
        seen = view.reserved_at.setdefault((worker_id, instance_id), now)
        if now - seen < self.settings.recovery_grace:
            self._recheck[instance_id] = seen + self.settings.recovery_grace  # maybe in flight elsewhere
            return
        reservation = view.workers[worker_id].ledger.get(instance_id)
        assert reservation is not None
        record = recovered_record(instance_id, worker_id, view.position,
                                  "completing the reservation found on the worker")

        def complete(instance: LabletInstance) -> bool:
            if instance.state is not I.PENDING:
                return False
            decision_id = str(event_id(instance.id, instance.version + 1))
            instance.record_placement_decided(decision_id, worker_id, record, ctx)
            instance.schedule(worker_id, reservation.ports, reservation.hold_start, reservation.hold_end,
                              decision_id, ctx)
            return True

        try:
            if self._change_instance(instance_id, complete):
                report.recovered += 1
        except InvalidInput as error:  # the hold does not match the instance (ports): undo it
            log.warning("scheduler %s: cannot complete %s on %s: %s", self.name, instance_id, worker_id, error)
            report.released += self._release(worker_id, instance_id, "mismatch", ctx)
