"""Placement commands: the scheduler's decision, the schedule, the requeue, the hold."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.context import CommandContext
from domain.errors import IllegalTransition, InvalidInput
from domain.instance.states import InstanceState
from domain.instance.values import require_mapping

if TYPE_CHECKING:  # the commands run on a LabletInstance: its events and state
    from domain.instance.events import InstanceEvents as _Instance
else:
    _Instance = object

S = InstanceState


class PlacementCommands(_Instance):
    """PENDING <-> SCHEDULED, and the reservation held on the worker."""

    def record_placement_decided(
        self, decision_id: str, worker_id: str, decision: Mapping[str, Any], ctx: CommandContext
    ) -> None:
        """Record why ``worker_id`` was chosen; follow with ``schedule`` in the same save."""
        self._require(S.SCHEDULED, "record a placement decision", sources=frozenset({S.PENDING}))
        self._record(self.PlacementDecided, ctx, decision_id=decision_id, worker_id=worker_id,
                     decision=require_mapping(decision, "decision"))

    def record_placement_failed(
        self, decision_id: str, summary: str, decision: Mapping[str, Any], ctx: CommandContext
    ) -> bool:
        """Record why nothing fitted; a no-op (False) when the last failure said the same."""
        if self.state is not S.PENDING:
            raise IllegalTransition("LabletInstance", self.state.value, "record a placement failure")
        if self.last_placement_failure == summary:
            return False
        self._record(self.PlacementFailed, ctx, decision_id=decision_id, summary=summary,
                     decision=require_mapping(decision, "decision"))
        return True

    def schedule(
        self,
        worker_id: str,
        ports: Mapping[str, int],
        hold_start: datetime,
        hold_end: datetime,
        decision_id: str | None,
        ctx: CommandContext,
    ) -> None:
        if self.state is S.SCHEDULED and self.worker_id == worker_id and self.placement_decision_id == decision_id:
            return  # the same placement delivered twice
        self._require(S.SCHEDULED, "be scheduled")
        if not isinstance(worker_id, str) or not worker_id:
            raise InvalidInput("worker_id", "must be a non-empty string")
        if hold_end <= hold_start:
            raise InvalidInput("hold_end", "must be after hold_start")
        ports = dict(ports)
        missing = sorted(set(self.requirements.port_names) - set(ports))
        if missing:
            raise InvalidInput("ports", f"no port allocated for {', '.join(missing)}")
        self._record(
            self.InstanceScheduled, ctx, worker_id=worker_id, allocated_ports=ports,
            hold_start=hold_start, hold_end=hold_end, decision_id=decision_id,
        )

    def move(
        self, worker_id: str, ports: Mapping[str, int], reason: str, decision_id: str | None, ctx: CommandContext
    ) -> None:
        """Consolidation: the same booked window on another worker, with the ports it gave.

        Only a SCHEDULED instance moves, and never once its instantiation time (``hold_start``,
        the start of the instantiation lead) has come: a lab being built never moves.
        """
        if self.state is not S.SCHEDULED:
            raise IllegalTransition("LabletInstance", self.state.value, "be moved to another worker")
        if self.hold_start is not None and ctx.at >= self.hold_start:
            raise IllegalTransition("LabletInstance", self.state.value,
                                    "be moved inside its instantiation lead")
        if not isinstance(worker_id, str) or not worker_id or worker_id == self.worker_id:
            raise InvalidInput("worker_id", "must name another worker")
        ports = dict(ports)
        missing = sorted(set(self.requirements.port_names) - set(ports))
        if missing:
            raise InvalidInput("ports", f"no port allocated for {', '.join(missing)}")
        self._record(self.InstanceMoved, ctx, worker_id=worker_id, previous_worker_id=self.worker_id,
                     allocated_ports=ports, previous_ports=dict(self.allocated_ports), reason=str(reason),
                     decision_id=decision_id)

    def unschedule(self, reason: str, ctx: CommandContext) -> None:
        """Back to the queue (worker lost, or a live lab needs the slot): re-placed later."""
        self._require(S.PENDING, "be requeued")
        self._record(
            self.InstanceRequeued, ctx, reason=reason, previous_worker_id=self.worker_id,
            released_ports=dict(self.allocated_ports),
        )

    def record_hold_extended(self, hold_end: datetime, ctx: CommandContext) -> None:
        """The worker extended this instance's reservation (``ReservationExtended``)."""
        if not self.holds_capacity or self.hold_end is None or self.worker_id is None:
            raise IllegalTransition("LabletInstance", self.state.value, "extend a hold it does not have")
        if hold_end <= self.hold_end:
            return
        self._record(self.InstanceHoldExtended, ctx, worker_id=self.worker_id,
                     previous_hold_end=self.hold_end, hold_end=hold_end)

    def extend_timeslot(
        self, timeslot_end: datetime, hold_end: datetime | None, ctx: CommandContext, *, minutes: int
    ) -> None:
        """The lab ends later; ``hold_end`` is the worker's extended reservation (checked by
        ``Worker.extend_reservation`` in the same save), None while it holds nothing."""
        if not self.is_live or timeslot_end <= self.timeslot_end:
            raise IllegalTransition("LabletInstance", self.state.value, "be extended")
        if (hold_end is None) == self.holds_capacity:
            raise InvalidInput("hold_end", "needed exactly when the instance holds a reservation")
        self._record(self.InstanceExtended, ctx, previous_timeslot_end=self.timeslot_end,
                     timeslot_end=timeslot_end, minutes=minutes, worker_id=self.worker_id, hold_end=hold_end)
