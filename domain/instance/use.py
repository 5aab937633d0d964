"""Use commands: logins, restarts, collection and grading."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition
from domain.instance.states import InstanceState
from domain.instance.values import ScoreReport, require_mapping

if TYPE_CHECKING:  # the commands run on a LabletInstance: its events and state
    from domain.instance.events import InstanceEvents as _Instance
else:
    _Instance = object

S = InstanceState


class HoldEnded(Conflict):
    """A command needs the instance's reservation, and the reservation has ended (409)."""

    title = "Reservation ended"


class UseCommands(_Instance):
    """READY -> RUNNING (and back from STOPPED) -> COLLECTING -> GRADING -> STOPPING."""

    def login(self, ctx: CommandContext, *, session_id: str | None = None, source: str = "api") -> None:
        """The user logged in: READY → RUNNING, or STOPPED → RUNNING (a restart)."""
        if self.state is S.RUNNING:
            return  # a second session.started for the same lab
        self._require(S.RUNNING, "accept a login")
        self._record(self.UserLoggedIn, ctx, session_id=session_id, source=source,
                     restart=self.state is S.STOPPED)

    def restart(self, ctx: CommandContext, *, reason: str = "") -> None:
        """STOPPED → RUNNING (``POST /start``), only while the hold taken at scheduling lasts:
        after ``hold_end`` the worker's capacity and ports may belong to another booking."""
        self._require(S.RUNNING, "restart", sources=frozenset({S.STOPPED}))
        if not self.holds_at(ctx.at):
            ended = self.hold_end.isoformat() if self.hold_end else "before it was stopped"
            raise HoldEnded(f"instance {self.id} cannot restart at {ctx.at.isoformat()}: "
                            f"its reservation on worker {self.worker_id} ended {ended}")
        self._record(self.InstanceRestarted, ctx, reason=reason)

    def start_collection(self, ctx: CommandContext, *, trigger: str = "timeslot_end") -> None:
        self._require(S.COLLECTING, "start collection")
        if not self.grading_enabled:
            raise IllegalTransition("LabletInstance", self.state.value,
                                    "start collection (its definition has no grading)")
        self._record(self.CollectionStarted, ctx, trigger=trigger)

    def start_grading(self, grading_session: Mapping[str, Any], ctx: CommandContext) -> None:
        self._require(S.GRADING, "start grading")
        self._record(self.GradingStarted, ctx, grading_session=require_mapping(grading_session, "grading_session"))

    def complete_grading(self, score_report: ScoreReport, ctx: CommandContext) -> None:
        self._require(S.STOPPING, "complete grading", sources=frozenset({S.GRADING}))
        if not isinstance(score_report, ScoreReport):
            score_report = ScoreReport.from_dict(score_report)
        self._record(self.GradingCompleted, ctx, score_report=score_report.to_dict())

    def fail_grading(self, reason: str, ctx: CommandContext) -> None:
        self._require(S.STOPPING, "fail grading", sources=frozenset({S.GRADING}))
        self._record(self.GradingFailed, ctx, reason=str(reason))
