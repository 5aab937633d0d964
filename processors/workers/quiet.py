"""When a worker-controller tick can be skipped: nothing it reads has changed since a tick
that did nothing.

A tick's decisions read three things: the workers (their state, VM id and boot times, not
their reservations), the cloud's VMs as of now, and the clock (a launch or boot deadline,
a retry). If the last tick took no step and had no error, and since then no worker event
other than a reservation arrived, the cloud has not changed (no call changed a VM, no VM
reached the end of a transition) and no deadline came, the next tick would decide the same
nothing again: skipping it changes no decision. The simulator's harness ticks the
controller in every round of every clock step, and with hundreds of workers each tick
lists every VM and drives every worker: without the skip that cost grows with workers ×
steps, the largest superlinear part of the simulated day outside the planner and scheduler.

Only a cloud that says when it changes can be skipped for (the simulated one); EC2 can
change without telling, so its ticks always run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.worker import Worker

# Worker events that change only its reservations: no tick decision reads them.
LEDGER_EVENTS = (Worker.CapacityReserved, Worker.CapacityReleased, Worker.ReservationExtended)


@runtime_checkable
class ReportsChanges(Protocol):
    """A cloud that says when its VMs change: by a call (``revision`` grows) or by time."""

    @property
    def revision(self) -> int: ...

    def next_change_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Quiet:
    """What held after a tick that did nothing."""

    at: datetime
    revision: int
    cloud_changes_at: datetime | None  # the next VM transition after ``at``
    deadline: datetime | None  # the earliest launch/boot deadline or retry after ``at``

    def holds(self, now: datetime, cloud: ReportsChanges) -> bool:
        """The next tick at ``now`` would find the same (given no worker event since)."""
        return (self.at <= now
                and cloud.revision == self.revision
                and (self.cloud_changes_at is None or now < self.cloud_changes_at)
                and (self.deadline is None or now < self.deadline))


def earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)
