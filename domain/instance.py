"""LabletInstance (SPEC §3.3): one booked lab, from request to termination.

The allowed transitions are data (``TRANSITIONS``, the SPEC table); every command names the
state it moves to and is refused with ``IllegalTransition`` unless the table allows it from
the current state. A few commands are idempotent when repeated in the state they lead to
(``schedule`` with the same decision, ``start_instantiation`` of the running attempt,
``login`` while RUNNING, ``request_stop`` while STOPPING), because processors deliver
at least once; they then record nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput
from domain.resources import Resources
from domain.timeslot import Timeslot

if TYPE_CHECKING:
    from domain.definition import DefinitionVersion


class InstanceState(str, Enum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    INSTANTIATING = "INSTANTIATING"
    READY = "READY"
    RUNNING = "RUNNING"
    COLLECTING = "COLLECTING"
    GRADING = "GRADING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ARCHIVED = "ARCHIVED"
    TERMINATED = "TERMINATED"

    def __str__(self) -> str:
        return self.value


S = InstanceState

# SPEC §3.3, row by row.
TRANSITIONS: dict[InstanceState, frozenset[InstanceState]] = {
    S.PENDING: frozenset({S.SCHEDULED, S.TERMINATED}),
    S.SCHEDULED: frozenset({S.INSTANTIATING, S.PENDING, S.TERMINATED}),
    S.INSTANTIATING: frozenset({S.READY, S.INSTANTIATING, S.TERMINATED}),
    S.READY: frozenset({S.RUNNING, S.COLLECTING, S.STOPPING, S.TERMINATED}),
    S.RUNNING: frozenset({S.COLLECTING, S.STOPPING, S.TERMINATED}),
    S.COLLECTING: frozenset({S.GRADING, S.STOPPING, S.TERMINATED}),
    S.GRADING: frozenset({S.STOPPING, S.TERMINATED}),
    S.STOPPING: frozenset({S.STOPPED, S.TERMINATED}),
    S.STOPPED: frozenset({S.RUNNING, S.ARCHIVED, S.TERMINATED}),
    S.ARCHIVED: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
}

# Capacity and ports are held from SCHEDULED until ARCHIVED/TERMINATED (a STOPPED lab can restart).
CAPACITY_HOLDING_STATES = frozenset(
    {S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.GRADING, S.STOPPING, S.STOPPED}
)
FINISHED_STATES = frozenset({S.ARCHIVED, S.TERMINATED})

TERMINATION_REASONS = frozenset({
    "cancelled", "instantiation_failed", "max_retries_exceeded", "worker_lost", "drain_timeout",
    "admin", "no_show", "grading_timeout", "stuck_timeout", "completed",
})
MAX_INSTANTIATION_RETRIES = 3


class HoldEnded(Conflict):
    """A command needs the instance's reservation, and the reservation has ended (409)."""

    title = "Reservation ended"


@dataclass(frozen=True)
class ScoreReport:
    """A grader's verdict (``grading.session.completed``)."""

    score: float
    max_score: float
    cut_score: float
    passed: bool
    sections: tuple[dict[str, Any], ...] = ()
    report_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("score", "max_score", "cut_score"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidInput(f"score_report.{name}", f"must be a non-negative number, got {value!r}")
        if self.max_score <= 0 or self.score > self.max_score or self.cut_score > self.max_score:
            raise InvalidInput("score_report", f"needs 0 <= score, cut_score <= max_score > 0, got "
                               f"{self.score}/{self.cut_score}/{self.max_score}")
        if not isinstance(self.passed, bool):
            raise InvalidInput("score_report.passed", "must be true or false")
        if not all(isinstance(s, Mapping) for s in self.sections):
            raise InvalidInput("score_report.sections", "must be a list of objects")
        object.__setattr__(self, "sections", tuple(dict(s) for s in self.sections))
        if self.report_url is not None and not isinstance(self.report_url, str):
            raise InvalidInput("score_report.report_url", "must be a string")

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "cut_score": self.cut_score,
            "passed": self.passed,
            "sections": [dict(s) for s in self.sections],
            "report_url": self.report_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreReport:
        if not isinstance(data, Mapping):
            raise InvalidInput("score_report", "must be an object")
        missing = sorted({"score", "max_score", "cut_score", "passed"} - set(data))
        if missing:
            raise InvalidInput(f"score_report.{missing[0]}", "is required")
        return cls(
            score=data["score"],
            max_score=data["max_score"],
            cut_score=data["cut_score"],
            passed=data["passed"],
            sections=tuple(data.get("sections") or ()),
            report_url=data.get("report_url"),
        )


@dataclass(frozen=True)
class InstanceRequirements:
    """What the pinned definition version asks of a worker (snapshot taken at request time)."""

    cpu_cores: float
    memory_gb: float
    storage_gb: float
    node_count: int
    port_names: tuple[str, ...] = ()
    license_affinity: tuple[str, ...] = ("PERSONAL", "ENTERPRISE", "EVALUATION")
    nested_virt: bool = True
    ami_name_pattern: str = "CML-*"
    ami_min_version: str | None = None
    max_duration_minutes: int = 0

    def __post_init__(self) -> None:
        Resources(self.cpu_cores, self.memory_gb, self.storage_gb)  # validates the numbers
        if isinstance(self.node_count, bool) or not isinstance(self.node_count, int) or self.node_count < 0:
            raise InvalidInput("node_count", f"must be a non-negative integer, got {self.node_count!r}")
        object.__setattr__(self, "port_names", tuple(self.port_names))
        object.__setattr__(self, "license_affinity", tuple(str(v) for v in self.license_affinity))

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_cores, self.memory_gb, self.storage_gb)

    @classmethod
    def from_definition(cls, definition: DefinitionVersion) -> InstanceRequirements:
        rr = definition.resource_requirements
        return cls(
            cpu_cores=rr.cpu_cores,
            memory_gb=rr.memory_gb,
            storage_gb=rr.storage_gb,
            node_count=definition.node_count,
            port_names=tuple(definition.port_names),
            license_affinity=tuple(t.value for t in definition.license_affinity),
            nested_virt=rr.nested_virt,
            ami_name_pattern=rr.ami.name_pattern,
            ami_min_version=rr.ami.min_version,
            max_duration_minutes=definition.max_duration_minutes,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_cores": self.cpu_cores,
            "memory_gb": self.memory_gb,
            "storage_gb": self.storage_gb,
            "node_count": self.node_count,
            "port_names": list(self.port_names),
            "license_affinity": list(self.license_affinity),
            "nested_virt": self.nested_virt,
            "ami_name_pattern": self.ami_name_pattern,
            "ami_min_version": self.ami_min_version,
            "max_duration_minutes": self.max_duration_minutes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceRequirements:
        return cls(**{**data, "port_names": tuple(data["port_names"]),
                      "license_affinity": tuple(data["license_affinity"])})


def _require_mapping(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be an object, got {type(value).__name__}")
    return dict(value)


class LabletInstance(LrmAggregate):
    """One lab booking; see ``TRANSITIONS`` for its life."""

    # -- events ------------------------------------------------------------------------

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

    class InstanceHoldExtended(LrmAggregate.Event):
        worker_id: str
        previous_hold_end: datetime
        hold_end: datetime

        def apply(self, aggregate: LabletInstance) -> None:
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

    # -- creation ----------------------------------------------------------------------

    @classmethod
    def request(
        cls,
        definition: DefinitionVersion,
        owner_id: str,
        timeslot: Timeslot,
        ctx: CommandContext,
        *,
        reservation_id: str | None = None,
        instance_id: str | None = None,
    ) -> LabletInstance:
        """A new PENDING instance pinned to ``definition`` (validate the timeslot first)."""
        return cls.request_with(
            definition_name=definition.name,
            definition_version=definition.version,
            requirements=InstanceRequirements.from_definition(definition),
            grading_enabled=definition.grading_enabled,
            owner_id=owner_id,
            timeslot=timeslot,
            ctx=ctx,
            reservation_id=reservation_id,
            instance_id=instance_id,
        )

    @classmethod
    def request_with(
        cls,
        *,
        definition_name: str,
        definition_version: str,
        requirements: InstanceRequirements,
        grading_enabled: bool,
        owner_id: str,
        timeslot: Timeslot,
        ctx: CommandContext,
        reservation_id: str | None = None,
        instance_id: str | None = None,
    ) -> LabletInstance:
        if not isinstance(owner_id, str) or not owner_id:
            raise InvalidInput("owner_id", "must be a non-empty string")
        if instance_id is not None and not instance_id.startswith(f"{cls.stream_prefix()}-"):
            raise InvalidInput("instance_id", f"must start with '{cls.stream_prefix()}-' (category streams), "
                               f"got {instance_id!r}")
        if timeslot.start is not None and timeslot.end <= timeslot.start:
            raise InvalidInput("timeslot_end", "must be after timeslot_start")
        return cls._create_with(
            cls.InstanceRequested,
            ctx,
            id=instance_id,
            definition_name=definition_name,
            definition_version=definition_version,
            owner_id=owner_id,
            reservation_id=reservation_id,
            timeslot_start=timeslot.start,
            timeslot_end=timeslot.end,
            requirements=requirements.to_dict(),
            grading_enabled=grading_enabled,
        )

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

    # -- placement ---------------------------------------------------------------------

    def record_placement_decided(
        self, decision_id: str, worker_id: str, decision: Mapping[str, Any], ctx: CommandContext
    ) -> None:
        """Record why ``worker_id`` was chosen; follow with ``schedule`` in the same save."""
        self._require(S.SCHEDULED, "record a placement decision", sources=frozenset({S.PENDING}))
        self._record(self.PlacementDecided, ctx, decision_id=decision_id, worker_id=worker_id,
                     decision=_require_mapping(decision, "decision"))

    def record_placement_failed(
        self, decision_id: str, summary: str, decision: Mapping[str, Any], ctx: CommandContext
    ) -> bool:
        """Record why nothing fitted; a no-op (False) when the last failure said the same."""
        if self.state is not S.PENDING:
            raise IllegalTransition("LabletInstance", self.state.value, "record a placement failure")
        if self.last_placement_failure == summary:
            return False
        self._record(self.PlacementFailed, ctx, decision_id=decision_id, summary=summary,
                     decision=_require_mapping(decision, "decision"))
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

    # -- instantiation -----------------------------------------------------------------

    def start_instantiation(self, attempt: int, ctx: CommandContext, *, lab_yaml_uri: str | None = None) -> None:
        """Attempt 1 from SCHEDULED; attempt n+1 after attempt n failed and may be retried."""
        if self.state is S.INSTANTIATING and not self.awaiting_retry and attempt == self.instantiation_attempt:
            return  # this attempt is already running
        self._require(S.INSTANTIATING, "start instantiation")
        if self.state is S.INSTANTIATING and not self.awaiting_retry:
            raise IllegalTransition("LabletInstance", self.state.value, f"start attempt {attempt} "
                                    f"while attempt {self.instantiation_attempt} is running")
        expected = self.instantiation_attempt + 1
        if attempt != expected:
            raise Conflict(f"instantiation attempt {attempt} requested, next attempt is {expected}")
        self._record(self.InstantiationStarted, ctx, attempt=attempt, worker_id=self.worker_id,
                     lab_yaml_uri=lab_yaml_uri or self.lab_yaml_uri)

    def _require_attempt_running(self, action: str) -> None:
        if self.state is not S.INSTANTIATING or self.awaiting_retry:
            raise IllegalTransition("LabletInstance", self.state.value, action)

    def record_lab_imported(self, cml_lab_id: str, ctx: CommandContext) -> None:
        self._require_attempt_running("record a lab import")
        if not isinstance(cml_lab_id, str) or not cml_lab_id:
            raise InvalidInput("cml_lab_id", "must be a non-empty string")
        self._record(self.LabImported, ctx, cml_lab_id=cml_lab_id, attempt=self.instantiation_attempt)

    def record_lab_started(self, ctx: CommandContext) -> None:
        self._require_attempt_running("record a lab start")
        self._record(self.LabStarted, ctx, cml_lab_id=self.cml_lab_id, attempt=self.instantiation_attempt)

    def instantiation_failed(self, error: str, ctx: CommandContext) -> bool:
        """Record a failed attempt; returns True if it will be retried.

        After ``MAX_INSTANTIATION_RETRIES`` retries the instance is terminated in the same
        command with reason ``max_retries_exceeded`` (nothing else may happen to it).
        """
        self._require_attempt_running("record an instantiation failure")
        will_retry = self.retry_count < MAX_INSTANTIATION_RETRIES
        self._record(
            self.InstantiationFailed, ctx, error=str(error), attempt=self.instantiation_attempt,
            retry_count=self.retry_count + (1 if will_retry else 0), will_retry=will_retry,
        )
        if not will_retry:
            self._terminate("max_retries_exceeded", ctx, detail=str(error))
        return will_retry

    def mark_ready(self, user_session: Mapping[str, Any], ctx: CommandContext) -> None:
        self._require(S.READY, "become ready")
        self._require_attempt_running("become ready")
        self._record(self.InstanceReady, ctx, user_session=_require_mapping(user_session, "user_session"))

    # -- use ---------------------------------------------------------------------------

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
        self._record(self.GradingStarted, ctx, grading_session=_require_mapping(grading_session, "grading_session"))

    def complete_grading(self, score_report: ScoreReport, ctx: CommandContext) -> None:
        self._require(S.STOPPING, "complete grading", sources=frozenset({S.GRADING}))
        if not isinstance(score_report, ScoreReport):
            score_report = ScoreReport.from_dict(score_report)
        self._record(self.GradingCompleted, ctx, score_report=score_report.to_dict())

    def fail_grading(self, reason: str, ctx: CommandContext) -> None:
        self._require(S.STOPPING, "fail grading", sources=frozenset({S.GRADING}))
        self._record(self.GradingFailed, ctx, reason=str(reason))

    # -- teardown ----------------------------------------------------------------------

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


def expected_sources(target: InstanceState) -> frozenset[InstanceState]:
    """States from which the table allows ``target`` (for docs and read models)."""
    return frozenset(s for s, nexts in TRANSITIONS.items() if target in nexts)


__all__: Sequence[str] = (
    "CAPACITY_HOLDING_STATES", "HoldEnded", "InstanceRequirements", "InstanceState", "LabletInstance",
    "MAX_INSTANTIATION_RETRIES", "ScoreReport", "TERMINATION_REASONS", "TRANSITIONS",
)
