"""Phase 1 of a pass: lost workers (FAILED, TERMINATED, or DRAINING past its deadline) are
evacuated: their holds released, SCHEDULED instances requeued, live ones terminated.

A worker an admin drains *with a deadline* gives up, at once, the bookings that have not
begun instantiating and whose window would outlast the deadline: requeued, they are placed
on another worker instead of starting on this one only to be ended at the deadline (the
ones already running stay: the admin chose to end those)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from domain.context import CommandContext
from domain.instance import InstanceState, LabletInstance
from domain.worker import Worker, WorkerState
from processors.scheduler.report import PassReport
from processors.scheduler.view import GONE_WORKER_STATES

if TYPE_CHECKING:  # a phase of the Scheduler: runs with the state SchedulerCore sets up
    from processors.scheduler.core import SchedulerCore as _Scheduler
else:
    _Scheduler = object

I = InstanceState  # noqa: E741 - short alias for the state table


class LostWorkers(_Scheduler):
    """Phase 1: evacuate lost workers."""

    def _handle_lost_workers(self, now: datetime, report: PassReport) -> None:
        view = self.view
        candidates = set(view.dirty_workers)
        view.dirty_workers.clear()
        candidates.update(w.id for w in view.workers.values() if w.state is WorkerState.DRAINING)
        for worker_id in sorted(candidates):
            worker = view.workers.get(worker_id)
            if worker is None:
                continue
            reason = self._lost_reason(worker, now)
            if reason is not None:
                self._evacuate(worker_id, reason, now, report)
            elif worker.state is WorkerState.DRAINING and worker.drain_deadline is not None:
                self._rescue_from_deadline(worker_id, worker.drain_deadline, now, report)

    @staticmethod
    def _lost_reason(worker: Worker, now: datetime) -> str | None:
        if worker.state in GONE_WORKER_STATES:
            return "worker_lost"
        if worker.state is WorkerState.DRAINING and worker.drain_deadline is not None and worker.drain_deadline <= now:
            return "drain_timeout"
        return None

    def _evacuate(self, worker_id: str, reason: str, now: datetime, report: PassReport) -> None:
        """Release a lost worker's holds first (so nothing resumes them), then requeue its
        SCHEDULED instances and terminate its live ones."""
        ctx = self._ctx(now, f"evacuate:{worker_id}")
        for instance in self.view.instances_on(worker_id):
            if worker_id in self.view.workers and instance.id in self.view.workers[worker_id].ledger:
                report.released += self._release(worker_id, instance.id, reason, ctx)
            if instance.state is I.SCHEDULED:
                if self._change_instance(instance.id, lambda i: _unschedule(i, worker_id, reason, ctx)):
                    report.requeued += 1
            elif self._change_instance(instance.id, lambda i: _terminate(i, worker_id, reason, ctx)):
                report.terminated += 1
        worker = self.view.workers.get(worker_id)
        for reservation in list(worker.ledger.reservations()) if worker is not None else ():
            report.released += self._release(worker_id, reservation.instance_id, reason, ctx)

    def _rescue_from_deadline(self, worker_id: str, deadline: datetime, now: datetime, report: PassReport) -> None:
        ctx = self._ctx(now, f"drain-deadline:{worker_id}")
        for instance in self.view.instances_on(worker_id):
            if not _outlasts(instance, worker_id, deadline):
                continue
            if self._change_instance(instance.id, lambda i: _unschedule(i, worker_id, "drain_deadline", ctx)
                                     if _outlasts(i, worker_id, deadline) else False):
                report.requeued += 1
                report.released += self._release(worker_id, instance.id, "drain_deadline", ctx)


def _outlasts(instance: LabletInstance, worker_id: str, deadline: datetime) -> bool:
    return (instance.state is I.SCHEDULED and instance.worker_id == worker_id
            and instance.timeslot_end is not None and instance.timeslot_end > deadline)


def _unschedule(instance: LabletInstance, worker_id: str, reason: str, ctx: CommandContext) -> bool:
    if instance.state is not I.SCHEDULED or instance.worker_id != worker_id:
        return False
    instance.unschedule(reason, ctx)
    return True


def _terminate(instance: LabletInstance, worker_id: str, reason: str, ctx: CommandContext) -> bool:
    if not instance.holds_capacity or instance.worker_id != worker_id:
        return False
    instance.terminate(reason, ctx, detail=f"worker {worker_id}: {reason}")
    return True
