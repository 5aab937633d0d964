"""The scheduler process manager (SPEC §4): queue → placement → reservation → schedule,
re-placement off lost workers, and the instantiation trigger.

It is level-triggered: every ``run_pass`` folds the log into its view (``SchedulerView``)
and then makes the world match it, so a pass after a crash, a conflict or a duplicate
delivery does the right thing without remembering anything else:

1. lost workers (FAILED, TERMINATED, or DRAINING past its deadline): release their
   holds, requeue their SCHEDULED instances, terminate their live ones;
2. reservations vs instances: a hold whose instance is PENDING is a placement that
   stopped between its two saves: after ``recovery_grace`` it is completed (the instance
   is scheduled with those ports); a hold whose instance is finished, or placed
   elsewhere, is released;
3. the queue (PENDING, FIFO by start time): decide with the placement policy, reserve
   on the chosen worker's stream (expected version), then record ``PlacementDecided``
   and ``InstanceScheduled`` on the instance's stream in one save; nothing fits →
   ``PlacementFailed`` (only when the reason changed). A queued instance is retried when
   the view's ``capacity_epoch`` moved (a worker came, got ready, a hold was released, a
   template changed) or at the safety re-scan, and then only if its window moved or a
   worker changed since can take it (``retries.py``); never by blind polling;
4. instantiation: SCHEDULED instances due (``timeslot_start - lead``; ASAP at once) go
   INSTANTIATING with their rewritten lab YAML stored in the artifact store.

Two schedulers may run at once (no leader): both reserve with the worker's expected
version, so the loser of a race gets ``ConcurrencyConflict``, re-reads and decides again.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from domain.worker import WorkerState
from processors.scheduler.candidates import decide_over_fleet, fleet_candidates, worker_candidate
from processors.scheduler.core import Clock, SchedulerCore, SchedulerStore
from processors.scheduler.deciding import Deciding
from processors.scheduler.holds import HoldReconciliation
from processors.scheduler.instantiation import Instantiation
from processors.scheduler.lost_workers import LostWorkers
from processors.scheduler.queue import QueuePlacement
from processors.scheduler.report import PassReport

log = logging.getLogger(__name__)


class Scheduler(LostWorkers, HoldReconciliation, QueuePlacement, Deciding, Instantiation, SchedulerCore):
    """One pass runs the four phases in order (files: ``lost_workers``, ``holds``, ``queue`` with
    ``deciding``, ``instantiation``); ``core`` holds the state they share."""

    # -- one pass --------------------------------------------------------------------------
    def run_pass(self, now: datetime | None = None) -> PassReport:
        with self._lock:
            now = now or self.clock.now()
            report = PassReport()
            view = self.view
            view.catch_up()
            if self._first_pass or self._rescan_due(now):
                self._first_pass = False
                self._last_rescan = now
                view.capacity_epoch += 1  # time alone frees ASAP capacity: retry the queue
                view.dirty_workers.update(view.workers)
                view.dirty_instances.update(view.instances)
            self._handle_lost_workers(now, report)
            self._reconcile_holds(now, report)
            self._place_queue(now, report)
            self._instantiate_due(now, report)
            self.totals.add(report)
            return report

    def run_until_idle(self, now: datetime | None = None, *, max_passes: int = 100) -> PassReport:
        """Passes until one changes nothing (tests, simulation)."""
        total = PassReport()
        for _ in range(max_passes):
            report = self.run_pass(now)
            total.add(report)
            if not report.acted:
                return total
        raise RuntimeError(f"scheduler {self.name} still acting after {max_passes} passes")

    def next_wake(self) -> datetime | None:
        """The next instant a pass has timed work: an instantiation, a drain deadline, a
        hold to recover, the safety re-scan."""
        view = self.view
        moments = [m for m in (view.next_due(), *self._recheck.values()) if m is not None]
        moments.extend(
            w.drain_deadline for w in view.workers.values()
            if w.state is WorkerState.DRAINING and w.drain_deadline is not None
        )
        if self._last_rescan is not None:
            moments.append(self._last_rescan + self.settings.rescan_interval)
        return min(moments, default=None)

    def _rescan_due(self, now: datetime) -> bool:
        return self._last_rescan is not None and now - self._last_rescan >= self.settings.rescan_interval

    # -- background loop ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=f"scheduler-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        """Pass, then sleep until an event arrives or timed work is due (capped by ``idle_wait``)."""
        failures = 0
        while not self._stopping.is_set():
            try:
                with self.store.subscribe(after=self.store.max_position()) as wakeups:
                    while not self._stopping.is_set():
                        report = self.run_pass()
                        failures = 0
                        if report.acted:
                            continue
                        wakeups.next_batch(timeout=self._sleep_seconds())
            except Exception as error:  # noqa: BLE001 - logged, retried with backoff, never fatal
                failures += 1
                self.last_error = error
                log.exception("scheduler %s: pass failed (%d in a row)", self.name, failures)
                self._stopping.wait(min(5.0, 0.05 * 2 ** min(failures, 7)))

    def _sleep_seconds(self) -> float:
        wake = self.next_wake()
        if wake is None:
            return self.settings.idle_wait
        seconds = (wake - self.clock.now()).total_seconds()
        return max(0.0, min(self.settings.idle_wait, seconds))


__all__ = [
    "Clock", "PassReport", "Scheduler", "SchedulerStore", "decide_over_fleet", "fleet_candidates", "worker_candidate",
]
