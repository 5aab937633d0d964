"""When time moves an instance on: the lifecycle's timed steps and the stuck-state watchdog.

Pure functions of an instance, the settings and (for ``due``) the time: the controller asks
them what is due and when to look again, so the rules can be tested without a store or CML.

Two kinds of timed steps:

- the lifecycle's own (``scheduled_step``): the timeslot ends (READY/RUNNING → collection, or
  stop without grading), a stopped lab is archived;
- the watchdog's (``watchdog_deadline``): every non-final state has a deadline after which the
  instance gets an explained outcome. For READY that is the no-show (→ STOPPING ``no_show``),
  for GRADING the grading timeout (``GradingFailed`` → STOPPING), for the others a forced
  termination with reason ``stuck_timeout`` and a description of where it was stuck.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from domain.instance import InstanceState, LabletInstance
from processors.instances.settings import LifecycleSettings

S = InstanceState


class Outcome(str, Enum):
    TERMINATE = "terminate"  # forced termination, reason stuck_timeout
    NO_SHOW = "no_show"  # READY → STOPPING
    GRADING_TIMEOUT = "grading_timeout"  # GRADING → STOPPING through GradingFailed


class Step(str, Enum):
    END_OF_TIMESLOT = "end_of_timeslot"
    ARCHIVE = "archive"


@dataclass(frozen=True)
class Deadline:
    state: InstanceState
    at: datetime
    outcome: Outcome
    explanation: str


@dataclass(frozen=True)
class TimedStep:
    at: datetime
    step: Step


def restartable(instance: LabletInstance) -> bool:
    """A lab stopped on request (``user_request``, ``admin_request``…) may be started again
    until its timeslot ends; one stopped by the lifecycle (graded, no-show…) is done."""
    return (instance.stop_reason or "").endswith("_request")


def archive_due(instance: LabletInstance) -> datetime:
    stopped = instance.entered_at(S.STOPPED)
    assert stopped is not None, "only for STOPPED instances"
    if restartable(instance):
        return max(stopped, instance.timeslot_end)
    return stopped


def scheduled_step(instance: LabletInstance) -> TimedStep | None:
    """The next timed step of the normal lifecycle, if the instance's state has one."""
    if instance.state in (S.READY, S.RUNNING):
        return TimedStep(instance.timeslot_end, Step.END_OF_TIMESLOT)
    if instance.state is S.STOPPED:
        return TimedStep(archive_due(instance), Step.ARCHIVE)
    return None


def _entered(instance: LabletInstance) -> datetime:
    at = instance.entered_at(instance.state)
    assert at is not None
    return at


def watchdog_deadline(instance: LabletInstance, settings: LifecycleSettings) -> Deadline | None:
    """When the instance counts as stuck in its current state, and what happens then."""
    state = instance.state
    if state is S.TERMINATED:
        return None
    limit = settings.timeout(state)
    entered = _entered(instance)
    minutes = f"{limit.total_seconds() / 60:g} min"
    if state is S.PENDING:
        anchor = max(entered, instance.timeslot_start or entered)
        at = min(anchor + limit, instance.timeslot_end)
        why = instance.last_placement_failure or "no placement decided"
        return Deadline(state, at, Outcome.TERMINATE,
                        f"stuck in PENDING: not placed {minutes} after its timeslot began "
                        f"(or by its end); last placement attempt: {why}")
    if state is S.SCHEDULED:
        due = (instance.timeslot_start - settings.instantiation_lead if instance.timeslot_start
               else instance.hold_start or entered)
        return Deadline(state, max(due, entered) + limit, Outcome.TERMINATE,
                        f"stuck in SCHEDULED: instantiation did not start within {minutes} of "
                        f"{max(due, entered).isoformat()} on worker {instance.worker_id}")
    if state is S.READY:
        anchor = max(entered, instance.timeslot_start or entered)
        return Deadline(state, anchor + limit, Outcome.NO_SHOW,
                        f"no login within {minutes} of {anchor.isoformat()}")
    if state is S.RUNNING:
        return Deadline(state, instance.timeslot_end + limit, Outcome.TERMINATE,
                        f"stuck in RUNNING: collection did not start within {minutes} "
                        f"after the timeslot ended at {instance.timeslot_end.isoformat()}")
    if state is S.GRADING:
        return Deadline(state, entered + limit, Outcome.GRADING_TIMEOUT,
                        f"grading_timeout: no grading result within {minutes} of "
                        f"{entered.isoformat()}")
    anchor = archive_due(instance) if state is S.STOPPED else entered
    detail = f"; last error: {instance.last_error}" if instance.last_error else ""
    if state is S.INSTANTIATING:
        detail = (f" (attempt {instance.instantiation_attempt}, retries {instance.retry_count}, "
                  f"worker {instance.worker_id}){detail}")
    return Deadline(state, anchor + limit, Outcome.TERMINATE,
                    f"stuck in {state.value} for {minutes} since {anchor.isoformat()}{detail}")


def next_look(instance: LabletInstance, settings: LifecycleSettings) -> datetime | None:
    """The earliest time something timed is due for this instance (None: nothing ever)."""
    times = []
    step = scheduled_step(instance)
    if step is not None:
        times.append(step.at)
    deadline = watchdog_deadline(instance, settings)
    if deadline is not None:
        times.append(deadline.at)
    return min(times, default=None)
