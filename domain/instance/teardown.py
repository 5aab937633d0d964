"""Teardown commands: stop, archive, terminate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.context import CommandContext
from domain.errors import InvalidInput
from domain.instance.states import TERMINATION_REASONS, InstanceState

if TYPE_CHECKING:  # the commands run on a LabletInstance: its events and state
    from domain.instance.events import InstanceEvents as _Instance
else:
    _Instance = object

S = InstanceState


class TeardownCommands(_Instance):
    """-> STOPPING -> STOPPED -> ARCHIVED -> TERMINATED (or terminated from any live state)."""

    def request_stop(self, reason: str, ctx: CommandContext) -> None:
        if self.state is S.STOPPING:
            return  # already stopping
        self._require(S.STOPPING, "stop")
        self._record(self.StopRequested, ctx, reason=reason)

    def mark_stopped(self, ctx: CommandContext) -> None:
        self._require(S.STOPPED, "be marked stopped")
        self._record(self.InstanceStopped, ctx)

    def archive(self, ctx: CommandContext) -> None:
        self._require(S.ARCHIVED, "be archived")
        self._record(self.InstanceArchived, ctx, worker_id=self.worker_id, released_ports=dict(self.allocated_ports))

    def terminate(self, reason: str | None, ctx: CommandContext, *, detail: str = "") -> None:
        """End the instance. From ARCHIVED the reason defaults to ``completed``; from a live
        state it is a forced termination and the reason is required (``TERMINATION_REASONS``).
        """
        self._require(S.TERMINATED, "be terminated")
        if reason is None and self.state is S.ARCHIVED:
            reason = "completed"
        if reason not in TERMINATION_REASONS:
            raise InvalidInput(
                "reason", f"forced termination needs one of {', '.join(sorted(TERMINATION_REASONS))}, got {reason!r}"
            )
        self._terminate(reason, ctx, detail=detail)

    def _terminate(self, reason: str, ctx: CommandContext, *, detail: str) -> None:
        self._record(
            self.InstanceTerminated, ctx, reason=reason, forced=self.is_live, previous_state=self.state.value,
            worker_id=self.worker_id,
            released_ports=dict(self.allocated_ports) if self.holds_capacity else {},
            detail=detail,
        )
