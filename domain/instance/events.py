"""What happens to a lablet instance (its events), and the state they build.

``LabletInstance`` (in ``domain.instance``) subclasses ``InstanceEvents``; the library then
redefines every event below as ``LabletInstance.<Event>`` in the module ``domain.instance``,
so the topics stored with them stay ``domain.instance:LabletInstance.<Event>``. Refer to the
events as ``LabletInstance.<Event>`` everywhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate
from domain.errors import IllegalTransition
from domain.instance.states import (
    CAPACITY_HOLDING_STATES,
    FINISHED_STATES,
    MAX_INSTANTIATION_RETRIES,
    TRANSITIONS,
    InstanceState,
)
from domain.instance.values import InstanceRequirements, ScoreReport

if TYPE_CHECKING:
    from domain.instance import LabletInstance

S = InstanceState


class InstanceEvents(LrmAggregate):
    """The events of ``LabletInstance`` and the reads of the state they set."""

    class InstanceRequested(LrmAggregate.Created):
        definition_name: str
        definition_version: str
        owner_id: str
        reservation_id: str | None
        timeslot_start: datetime | None
        timeslot_end: datetime
        requirements: dict[str, Any]
        grading_enabled: bool

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.definition_name = self.definition_name
            aggregate.definition_version = self.definition_version
            aggregate.owner_id = self.owner_id
            aggregate.reservation_id = self.reservation_id
            aggregate.timeslot_start = self.timeslot_start
            aggregate.timeslot_end = self.timeslot_end
            aggregate.requirements = InstanceRequirements.from_dict(self.requirements)
            aggregate.grading_enabled = self.grading_enabled
            aggregate.state = S.PENDING
            aggregate.worker_id = None
            aggregate.allocated_ports = {}
            aggregate.hold_start = None
            aggregate.hold_end = None
            aggregate.placement_decision_id = None
            aggregate.last_placement_failure = None
            aggregate.lab_yaml_uri = None
            aggregate.cml_lab_id = None
            aggregate.user_session = None
            aggregate.grading_session = None
            aggregate.score_report = None
            aggregate.retry_count = 0
            aggregate.instantiation_attempt = 0
            aggregate.awaiting_retry = False
            aggregate.last_error = None
            aggregate.stop_reason = None
            aggregate.termination_reason = None
            aggregate.phase_times = {S.PENDING.value: self.timestamp}

    class PlacementDecided(LrmAggregate.Event):
        """The scheduler chose a worker (recorded with ``InstanceScheduled`` in one save)."""

        decision_id: str
        worker_id: str
        decision: dict[str, Any]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.last_placement_failure = None

    class PlacementFailed(LrmAggregate.Event):
        """Nothing fitted: the instance stays PENDING (queued); ``summary`` says why in short."""

        decision_id: str
        summary: str
        decision: dict[str, Any]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.last_placement_failure = self.summary

    class InstanceScheduled(LrmAggregate.Event):
        worker_id: str
        allocated_ports: dict[str, int]
        hold_start: datetime
        hold_end: datetime
        decision_id: str | None

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.worker_id = self.worker_id
            aggregate.allocated_ports = dict(self.allocated_ports)
            aggregate.hold_start = self.hold_start
            aggregate.hold_end = self.hold_end
            aggregate.placement_decision_id = self.decision_id
            aggregate._enter(S.SCHEDULED, self.timestamp)

    class InstanceRequeued(LrmAggregate.Event):
        reason: str
        previous_worker_id: str | None
        released_ports: dict[str, int]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.worker_id = None
            aggregate.allocated_ports = {}
            aggregate.hold_start = None
            aggregate.hold_end = None
            aggregate.placement_decision_id = None
            aggregate._enter(S.PENDING, self.timestamp)

    class InstanceMoved(LrmAggregate.Event):
        """Consolidation moved the booking, not yet instantiating, to another worker: same
        window, ports allocated again there (SPEC §5). Still SCHEDULED."""

        worker_id: str
        previous_worker_id: str
        allocated_ports: dict[str, int]
        previous_ports: dict[str, int]
        reason: str
        decision_id: str | None

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.worker_id = self.worker_id
            aggregate.allocated_ports = dict(self.allocated_ports)

    class InstanceHoldExtended(LrmAggregate.Event):
        worker_id: str
        previous_hold_end: datetime
        hold_end: datetime

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.hold_end = self.hold_end

    class InstanceExtended(LrmAggregate.Event):
        """The booked lab now ends later (``POST /extend``); its hold moved with it."""

        previous_timeslot_end: datetime
        timeslot_end: datetime
        minutes: int
        worker_id: str | None
        hold_end: datetime | None  # None while PENDING (no reservation yet)

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.timeslot_end = self.timeslot_end
            if self.hold_end is not None:
                aggregate.hold_end = self.hold_end

    class InstantiationStarted(LrmAggregate.Event):
        attempt: int
        worker_id: str | None
        lab_yaml_uri: str | None = None  # the lab YAML with the ports rewritten (artifact store)

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.instantiation_attempt = self.attempt
            aggregate.awaiting_retry = False
            if self.lab_yaml_uri is not None:
                aggregate.lab_yaml_uri = self.lab_yaml_uri
            aggregate._enter(S.INSTANTIATING, self.timestamp)

    class LabImported(LrmAggregate.Event):
        cml_lab_id: str
        attempt: int

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.cml_lab_id = self.cml_lab_id

    class LabStarted(LrmAggregate.Event):
        cml_lab_id: str | None
        attempt: int

        def apply(self, aggregate: LabletInstance) -> None:
            pass

    class InstantiationFailed(LrmAggregate.Event):
        error: str
        attempt: int
        retry_count: int
        will_retry: bool

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.retry_count = self.retry_count
            aggregate.last_error = self.error
            aggregate.awaiting_retry = self.will_retry

    class InstanceReady(LrmAggregate.Event):
        user_session: dict[str, Any]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.user_session = dict(self.user_session)
            aggregate._enter(S.READY, self.timestamp)

    class UserLoggedIn(LrmAggregate.Event):
        session_id: str | None
        source: str
        restart: bool

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate._enter(S.RUNNING, self.timestamp)

    class InstanceRestarted(LrmAggregate.Event):
        """A STOPPED lab started again by an operator (not by a user login)."""

        reason: str

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.stop_reason = None
            aggregate._enter(S.RUNNING, self.timestamp)

    class CollectionStarted(LrmAggregate.Event):
        trigger: str

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate._enter(S.COLLECTING, self.timestamp)

    class GradingStarted(LrmAggregate.Event):
        grading_session: dict[str, Any]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.grading_session = dict(self.grading_session)
            aggregate._enter(S.GRADING, self.timestamp)

    class GradingCompleted(LrmAggregate.Event):
        """The grader's verdict arrived; the lab moves on to STOPPING."""

        score_report: dict[str, Any]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.score_report = ScoreReport.from_dict(self.score_report)
            aggregate.stop_reason = "graded"
            aggregate._enter(S.STOPPING, self.timestamp)

    class GradingFailed(LrmAggregate.Event):
        """Grading could not finish; the lab still stops (results are what was collected)."""

        reason: str

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.last_error = self.reason
            aggregate.stop_reason = "grading_failed"
            aggregate._enter(S.STOPPING, self.timestamp)

    class StopRequested(LrmAggregate.Event):
        reason: str

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.stop_reason = self.reason
            aggregate._enter(S.STOPPING, self.timestamp)

    class InstanceStopped(LrmAggregate.Event):
        def apply(self, aggregate: LabletInstance) -> None:
            aggregate._enter(S.STOPPED, self.timestamp)

    class InstanceArchived(LrmAggregate.Event):
        """Results kept, lab wiped from CML: capacity and ports are released."""

        worker_id: str | None
        released_ports: dict[str, int]

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate._enter(S.ARCHIVED, self.timestamp)

    class InstanceTerminated(LrmAggregate.Event):
        reason: str
        forced: bool
        previous_state: str
        worker_id: str | None
        released_ports: dict[str, int]
        detail: str

        def apply(self, aggregate: LabletInstance) -> None:
            aggregate.termination_reason = self.reason
            aggregate.awaiting_retry = False
            aggregate._enter(S.TERMINATED, self.timestamp)

    if TYPE_CHECKING:  # set by the events' apply
        definition_name: str
        definition_version: str
        owner_id: str
        reservation_id: str | None
        timeslot_start: datetime | None
        timeslot_end: datetime
        requirements: InstanceRequirements
        grading_enabled: bool
        state: InstanceState
        worker_id: str | None
        allocated_ports: dict[str, int]
        hold_start: datetime | None
        hold_end: datetime | None
        placement_decision_id: str | None
        last_placement_failure: str | None
        lab_yaml_uri: str | None
        cml_lab_id: str | None
        user_session: dict[str, Any] | None
        grading_session: dict[str, Any] | None
        score_report: ScoreReport | None
        retry_count: int
        instantiation_attempt: int
        awaiting_retry: bool
        last_error: str | None
        stop_reason: str | None
        termination_reason: str | None
        phase_times: dict[str, datetime]

    def _enter(self, state: InstanceState, at: datetime) -> None:
        self.state = state
        self.phase_times[state.value] = at

    # -- reading -----------------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        """Not finished: neither ARCHIVED nor TERMINATED (forced termination needs a reason)."""
        return self.state not in FINISHED_STATES

    @property
    def holds_capacity(self) -> bool:
        return self.state in CAPACITY_HOLDING_STATES

    @property
    def retries_exhausted(self) -> bool:
        return self.retry_count >= MAX_INSTANTIATION_RETRIES

    def holds_at(self, at: datetime) -> bool:
        """Whether its reservation on the worker still holds at ``at`` (the hold ends at ``hold_end``)."""
        return self.holds_capacity and self.hold_end is not None and at < self.hold_end

    def entered_at(self, state: InstanceState) -> datetime | None:
        """When the instance last entered ``state`` (None if it never did)."""
        return self.phase_times.get(InstanceState(state).value)

    def can(self, target: InstanceState) -> bool:
        return target in TRANSITIONS[self.state]

    def _require(self, target: InstanceState, action: str, *, sources: frozenset[InstanceState] | None = None) -> None:
        if target not in TRANSITIONS[self.state] or (sources is not None and self.state not in sources):
            raise IllegalTransition("LabletInstance", self.state.value, action)
