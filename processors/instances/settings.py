"""Knobs of the instance controller (the composition root fills them from ``LRM_*``).

Every non-final state has a timeout (SPEC §6: "a stuck-state timeout that ends in a
recorded, explained outcome"). Where the clock of a state starts is in ``policy``: most
count from entering the state, a few from the timeslot (a lab that became READY before
its timeslot began is not a no-show yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

from domain.instance import InstanceState

S = InstanceState

DEFAULT_TIMEOUTS: dict[InstanceState, timedelta] = {
    S.PENDING: timedelta(minutes=60),  # queued this long after its timeslot began
    S.SCHEDULED: timedelta(minutes=30),  # still not instantiating this long after it was due
    S.INSTANTIATING: timedelta(minutes=90),  # one attempt, from its start (boot timeout is 20)
    S.READY: timedelta(minutes=30),  # the no-show timeout, from the later of READY and timeslot start
    S.RUNNING: timedelta(minutes=30),  # still running this long after the timeslot ended
    S.COLLECTING: timedelta(minutes=30),
    S.GRADING: timedelta(minutes=60),  # the grading timeout: GradingFailed, then the lab stops
    S.STOPPING: timedelta(minutes=30),
    S.STOPPED: timedelta(minutes=30),  # after it was due for archiving
    S.ARCHIVED: timedelta(minutes=30),
}


def _minutes(value: object, state: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"timeout of {state} must be a positive number of minutes, got {value!r}")
    return timedelta(minutes=float(value))


@dataclass(frozen=True)
class LifecycleSettings:
    timeouts: Mapping[InstanceState, timedelta] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    #: instantiation starts at ``timeslot_start - lead`` (the scheduler's setting, needed for SCHEDULED)
    instantiation_lead: timedelta = timedelta(minutes=15)
    #: ``wait_until_booted`` limit, in CML seconds
    boot_timeout_seconds: float = 1200.0
    #: wait before instantiation attempt n+1: ``retry_delay * 2**(n-1)``
    retry_delay: timedelta = timedelta(seconds=30)
    #: a failed CML/artifact call in any other step is tried again after this long
    step_retry_delay: timedelta = timedelta(seconds=30)
    #: while INSTANTIATING on a worker that has no IP yet, look again after this long
    worker_wait: timedelta = timedelta(seconds=30)
    #: how often every worker's labs are compared with the instances (orphans deleted)
    reconcile_interval: timedelta = timedelta(minutes=10)
    #: the user's entry point; ``{host}``, ``{lab_id}``, ``{instance_id}`` are filled in
    login_url_template: str = "https://{host}/lab/{lab_id}"
    #: a node's web console; ``{host}``, ``{key}`` (CML's console key), ``{lab_id}`` are filled in
    console_url_template: str = "https://{host}/console/{key}"
    #: at most this many instances are driven at once (CML calls in flight)
    concurrency: int = 64
    actor: str = "system:instance-controller"
    checkpoint_name: str = "instance-controller"

    def timeout(self, state: InstanceState) -> timedelta:
        return self.timeouts.get(state, DEFAULT_TIMEOUTS[state])

    def with_timeouts(self, minutes_by_state: Mapping[str, object]) -> LifecycleSettings:
        """Override some timeouts, given in minutes by state name (``{"READY": 10}``)."""
        timeouts = dict(self.timeouts)
        for name, value in minutes_by_state.items():
            try:
                state = InstanceState(str(name).upper())
            except ValueError:
                raise ValueError(f"no timeout for {name!r}: states are "
                                 f"{', '.join(s.value for s in DEFAULT_TIMEOUTS)}") from None
            if state not in DEFAULT_TIMEOUTS:
                raise ValueError(f"{state.value} is final: it has no timeout")
            timeouts[state] = _minutes(value, state.value)
        return replace(self, timeouts=timeouts)
