"""The instance controller: drives each lablet instance through its life on CML (SPEC §6).

Level-triggered, like a Kubernetes controller: for every live instance it loads the
aggregate, compares it with the clock and with CML, and does the one thing that is due —
then looks again. It never trusts its memory for what to do, only for *when* to look:

- which instances exist comes from a re-scan of the log at start, then from following it;
- what to do comes from the instance's state (read from the store before every step) and
  from CML (labs are found by title, the title carries the instance id, so an import is
  never repeated and a half-done attempt is picked up where it stopped).

So a crash at any point loses nothing: the next controller re-scans, finds every live
instance in the state its last save left it, and finds its lab (or none) on CML.

The one obligation that is *not* visible in an instance's state is cleaning up after a
termination somebody else recorded (an admin's ``DELETE`` while the lab runs): the
controller follows the log with a checkpoint that never passes an ``InstanceTerminated``
whose lab it has not deleted yet. And a reconciliation pass compares each worker's labs
with the instances placed on it and deletes the labs of finished instances.

Steps per state (each saved before the next one starts):

| state | step |
|---|---|
| INSTANTIATING | find or import the lab (title = instance id), start it, record ``LabImported``/``LabStarted``, wait until booted, ``mark_ready`` with the user session; on failure delete the lab and ``instantiation_failed`` (retried after a backoff, at most 3 times) |
| READY, RUNNING | at ``timeslot_end``: collection (or stop without grading); a RUNNING lab restarted from STOPPED is started on CML again |
| COLLECTING | node configs → an artifact → ``start_grading`` (the dispatcher sends the grading CloudEvent) |
| STOPPING | score report → an artifact; lab stopped on CML → ``mark_stopped`` |
| STOPPED | when due (``policy.archive_due``): lab deleted → ``archive`` + ``Worker.release`` |
| ARCHIVED | ``terminate`` (completed) |
| TERMINATED | the lab deleted from CML, a capacity hold still on the worker released |

Plus the watchdog (``policy.watchdog_deadline``) before every step.
"""
from __future__ import annotations

import logging
from datetime import datetime

from domain.instance import InstanceState, LabletInstance
from processors.instances.core import GONE, REACHABLE, ControllerCore, WorkerInfo
from processors.instances.following import LEDGER_EVENTS, SCAN_EVENTS, LogFollowing
from processors.instances.instantiation import Instantiation
from processors.instances.passes import MAX_STEPS_PER_LOOK, Passes
from processors.instances.policy import Outcome, Step, archive_due, scheduled_step, watchdog_deadline
from processors.instances.ports import Artifacts, ControllerStore, EndpointFor, MemoryCheckpoints
from processors.instances.reconciliation import ReconcileReport, Reconciliation
from processors.instances.running import Running
from processors.instances.teardown import Teardown

log = logging.getLogger(__name__)

S = InstanceState


class InstanceController(Passes, LogFollowing, Instantiation, Running, Teardown, Reconciliation, ControllerCore):
    """The steps per state (the table above) dispatched from ``_step``; each part in its own
    file: ``following`` (the log), ``passes`` (when to look), ``instantiation``, ``running``,
    ``teardown``, ``reconciliation``; ``core`` holds the state they share."""

    async def _step(self, instance: LabletInstance, now: datetime) -> bool:
        """Do what is due for ``instance`` now; True if something was saved (look again)."""
        if instance.state is S.TERMINATED:
            await self._clean_up(instance)
            return False
        deadline = watchdog_deadline(instance, self.settings)
        if deadline is not None and now >= deadline.at:
            self._overdue(instance, deadline.outcome, deadline.explanation, now)
            return True
        state = instance.state
        if state is S.INSTANTIATING:
            return await self._instantiating(instance, now)
        if state in (S.READY, S.RUNNING):
            if state is S.RUNNING and not await self._lab_running_after_restart(instance):
                return False
            step = scheduled_step(instance)
            if step is not None and step.step is Step.END_OF_TIMESLOT and now >= step.at:
                ctx = self._ctx(now, "timeslot_end")
                if instance.grading_enabled:
                    instance.start_collection(ctx, trigger="timeslot_end")
                else:
                    instance.request_stop("timeslot_end", ctx)
                self.store.save(instance)
                return True
            return False
        if state is S.COLLECTING:
            return await self._collect(instance, now)
        if state is S.STOPPING:
            return await self._stop(instance, now)
        if state is S.STOPPED:
            if now < archive_due(instance):
                return False
            return await self._archive(instance, now)
        if state is S.ARCHIVED:
            instance.terminate(None, self._ctx(now, "archived"), detail="lab archived")
            self.store.save(instance)
            return True
        return False  # PENDING, SCHEDULED (the scheduler's), GRADING (the grader's)

    # -- the watchdog ------------------------------------------------------------------
    def _overdue(self, instance: LabletInstance, outcome: Outcome, explanation: str, now: datetime) -> None:
        ctx = self._ctx(now, f"watchdog:{instance.state.value}")
        log.warning("instance %s overdue in %s: %s", instance.id, instance.state.value, explanation)
        if outcome is Outcome.NO_SHOW:
            instance.request_stop("no_show", ctx)
            self.store.save(instance)
        elif outcome is Outcome.GRADING_TIMEOUT:
            instance.fail_grading(explanation, ctx)
            self.store.save(instance)
        else:
            self._terminate(instance, "stuck_timeout", explanation, ctx)


__all__ = [
    "GONE", "LEDGER_EVENTS", "MAX_STEPS_PER_LOOK", "REACHABLE", "SCAN_EVENTS",
    "Artifacts", "ControllerStore", "EndpointFor", "InstanceController", "MemoryCheckpoints", "ReconcileReport",
    "WorkerInfo",
]
