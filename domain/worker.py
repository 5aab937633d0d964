"""Worker (SPEC §3.4): one CML host, its life and its reservation ledger.

The worker stream holds the reservations (``CapacityReserved``/``CapacityReleased``/
``ReservationExtended``), so optimistic concurrency on this one stream is what prevents
overbooking: two schedulers racing for the last cores conflict on the save, and the loser
re-reads and retries. The ledger is rebuilt by the events' ``apply`` (a replay gives the
same ledger; it never re-checks, so a replay cannot fail).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InsufficientCapacity, InvalidInput, NotFound
from domain.ledger import Reservation, ReservationLedger
from domain.resources import Resources
from domain.worker_template import WorkerTemplateSpec


class WorkerState(str, Enum):
    PENDING = "PENDING"
    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    DRAINING = "DRAINING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value


W = WorkerState

WORKER_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    W.PENDING: frozenset({W.PROVISIONING, W.FAILED, W.TERMINATED}),
    W.PROVISIONING: frozenset({W.RUNNING, W.FAILED, W.TERMINATED}),
    W.RUNNING: frozenset({W.DRAINING, W.STOPPING, W.TERMINATED}),
    W.DRAINING: frozenset({W.RUNNING, W.STOPPING, W.TERMINATED}),
    W.STOPPING: frozenset({W.STOPPED, W.TERMINATED}),
    W.STOPPED: frozenset({W.PROVISIONING, W.TERMINATED}),
    W.FAILED: frozenset({W.TERMINATED}),
    W.TERMINATED: frozenset(),
}

# New reservations: a worker that is (or will be) able to run labs in time. A STOPPED
# worker can take future bookings (the autoscaler restarts it before they begin).
RESERVABLE_STATES = frozenset({W.PENDING, W.PROVISIONING, W.RUNNING, W.STOPPED})
# A draining worker finishes what it has, so its live labs may still be extended.
EXTENDABLE_STATES = RESERVABLE_STATES | {W.DRAINING}

WORKER_TERMINATION_REASONS = frozenset({
    "admin", "scale_down", "drain_timeout", "worker_lost", "provisioning_failed", "cancelled",
})


class Worker(LrmAggregate):
    """A CML host created from a template snapshot, with its ledger of reservations."""

    # -- lifecycle events --------------------------------------------------------------

    class WorkerRequested(LrmAggregate.Created):
        template_name: str
        template: dict[str, Any]
        expected_ready_at: datetime
        reason: str

        def apply(self, aggregate: Worker) -> None:
            spec = WorkerTemplateSpec.from_dict(self.template)
            aggregate.template_name = self.template_name
            aggregate.template = spec
            aggregate.state = W.PENDING
            aggregate.expected_ready_at = self.expected_ready_at
            aggregate.cloud_instance_id = None
            aggregate.region = spec.region
            aggregate.ip = None
            aggregate.drain_deadline = None
            aggregate.last_error = None
            aggregate.termination_reason = None
            aggregate.phase_times = {W.PENDING.value: self.timestamp}
            aggregate.ledger = ReservationLedger(spec.capacity, spec.node_limit, spec.port_range.as_tuple())

    class WorkerProvisioningStarted(LrmAggregate.Event):
        cloud_instance_id: str
        region: str
        expected_ready_at: datetime

        def apply(self, aggregate: Worker) -> None:
            aggregate.cloud_instance_id = self.cloud_instance_id
            aggregate.region = self.region
            aggregate.expected_ready_at = self.expected_ready_at
            aggregate._enter(W.PROVISIONING, self.timestamp)

    class WorkerReady(LrmAggregate.Event):
        ip: str
        cloud_instance_id: str | None

        def apply(self, aggregate: Worker) -> None:
            aggregate.ip = self.ip
            aggregate._enter(W.RUNNING, self.timestamp)

    class WorkerProvisioningFailed(LrmAggregate.Event):
        error: str
        affected_instance_ids: list[str]

        def apply(self, aggregate: Worker) -> None:
            aggregate.last_error = self.error
            aggregate._enter(W.FAILED, self.timestamp)

    class DrainingStarted(LrmAggregate.Event):
        """``drain_deadline`` is None for a drain without a timeout (the autoscaler's, or an
        admin's without one): nothing on the worker is ever ended because of the drain."""

        reason: str
        drain_deadline: datetime | None
        held_instance_ids: list[str]

        def apply(self, aggregate: Worker) -> None:
            aggregate.drain_deadline = self.drain_deadline
            aggregate._enter(W.DRAINING, self.timestamp)

    class DrainCancelled(LrmAggregate.Event):
        reason: str

        def apply(self, aggregate: Worker) -> None:
            aggregate.drain_deadline = None
            aggregate._enter(W.RUNNING, self.timestamp)

    class WorkerStopping(LrmAggregate.Event):
        reason: str
        forced: bool
        active_instance_ids: list[str]

        def apply(self, aggregate: Worker) -> None:
            aggregate.drain_deadline = None
            aggregate._enter(W.STOPPING, self.timestamp)

    class WorkerStopped(LrmAggregate.Event):
        def apply(self, aggregate: Worker) -> None:
            aggregate.ip = None
            aggregate._enter(W.STOPPED, self.timestamp)

    class WorkerRestartRequested(LrmAggregate.Event):
        reason: str
        expected_ready_at: datetime

        def apply(self, aggregate: Worker) -> None:
            aggregate.expected_ready_at = self.expected_ready_at
            aggregate._enter(W.PROVISIONING, self.timestamp)

    class WorkerTerminated(LrmAggregate.Event):
        """Final. Reservations still held are dropped; their instances are listed to be re-placed."""

        reason: str
        forced: bool
        affected_instance_ids: list[str]

        def apply(self, aggregate: Worker) -> None:
            aggregate.termination_reason = self.reason
            aggregate.drain_deadline = None
            aggregate.ledger = ReservationLedger(
                aggregate.ledger.capacity, aggregate.ledger.max_nodes, aggregate.ledger.port_range
            )
            aggregate._enter(W.TERMINATED, self.timestamp)

    # -- reservation events ------------------------------------------------------------

    class CapacityReserved(LrmAggregate.Event):
        instance_id: str
        resources: dict[str, float]
        nodes: int
        ports: dict[str, int]
        hold_start: datetime
        hold_end: datetime

        def apply(self, aggregate: Worker) -> None:
            aggregate.ledger.add(
                Reservation(self.instance_id, Resources.from_dict(self.resources), self.nodes, dict(self.ports),
                            self.hold_start, self.hold_end),
                verify=False,
            )

    class CapacityReleased(LrmAggregate.Event):
        instance_id: str
        resources: dict[str, float]
        nodes: int
        ports: dict[str, int]
        hold_start: datetime
        hold_end: datetime
        reason: str

        def apply(self, aggregate: Worker) -> None:
            aggregate.ledger.remove(self.instance_id)

    class ReservationExtended(LrmAggregate.Event):
        instance_id: str
        previous_hold_end: datetime
        hold_end: datetime

        def apply(self, aggregate: Worker) -> None:
            current = aggregate.ledger.remove(self.instance_id)
            aggregate.ledger.add(
                Reservation(current.instance_id, current.resources, current.nodes, dict(current.ports),
                            current.hold_start, self.hold_end),
                verify=False,
            )

    if TYPE_CHECKING:  # set by the events' apply
        template_name: str
        template: WorkerTemplateSpec
        state: WorkerState
        expected_ready_at: datetime | None
        cloud_instance_id: str | None
        region: str
        ip: str | None
        drain_deadline: datetime | None
        last_error: str | None
        termination_reason: str | None
        phase_times: dict[str, datetime]
        ledger: ReservationLedger

    def _enter(self, state: WorkerState, at: datetime) -> None:
        self.state = state
        self.phase_times[state.value] = at

    def __deepcopy__(self, memo: dict[int, Any]) -> Worker:
        """Its own containers and ledger; the values shared (the template is a frozen spec,
        times, strings and states are immutable). The event store's aggregate cache hands
        out a deep copy on every worker load; the generic one rebuilt the template's nested
        dataclasses each time (~4/5 of a cached load)."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        state = vars(clone)
        for name, value in vars(self).items():
            if isinstance(value, ReservationLedger):
                value = copy.deepcopy(value, memo)
            elif isinstance(value, (dict, list, set)):
                value = copy.copy(value)  # phase_times, the library's pending events
            state[name] = value
        return clone

    # -- reading -----------------------------------------------------------------------

    @property
    def capacity(self) -> Resources:
        return self.template.capacity

    @property
    def license_type(self) -> str:
        return self.template.license_type.value

    @property
    def is_live(self) -> bool:
        """Counts against its template (a template in use cannot be removed)."""
        return self.state is not W.TERMINATED

    @property
    def accepts_reservations(self) -> bool:
        return self.state in RESERVABLE_STATES

    def reservations(self) -> list[Reservation]:
        return self.ledger.reservations()

    def active_instance_ids(self, at: datetime) -> list[str]:
        return sorted(r.instance_id for r in self.ledger.active_at(at))

    def entered_at(self, state: WorkerState) -> datetime | None:
        return self.phase_times.get(WorkerState(state).value)

    def _require(self, target: WorkerState, action: str, *, sources: frozenset[WorkerState] | None = None) -> None:
        if target not in WORKER_TRANSITIONS[self.state] or (sources is not None and self.state not in sources):
            raise IllegalTransition("Worker", self.state.value, action)

    # -- lifecycle commands ------------------------------------------------------------

    @classmethod
    def request(
        cls,
        template: WorkerTemplateSpec,
        ctx: CommandContext,
        *,
        worker_id: str | None = None,
        reason: str = "",
        expected_ready_at: datetime | None = None,
    ) -> Worker:
        """A new PENDING worker (decided, not yet launched), with a snapshot of its template."""
        if worker_id is not None and not worker_id.startswith(f"{cls.stream_prefix()}-"):
            raise InvalidInput("worker_id", f"must start with '{cls.stream_prefix()}-', got {worker_id!r}")
        return cls._create_with(
            cls.WorkerRequested,
            ctx,
            id=worker_id,
            template_name=template.name,
            template=template.to_dict(),
            expected_ready_at=expected_ready_at or ctx.at + timedelta(minutes=template.startup_minutes),
            reason=reason,
        )

    def start_provisioning(
        self, cloud_instance_id: str, ctx: CommandContext, *, region: str | None = None,
        expected_ready_at: datetime | None = None,
    ) -> None:
        if self.state is W.PROVISIONING and self.cloud_instance_id == cloud_instance_id:
            return  # the same launch reported twice
        self._require(W.PROVISIONING, "start provisioning", sources=frozenset({W.PENDING}))
        if not isinstance(cloud_instance_id, str) or not cloud_instance_id:
            raise InvalidInput("cloud_instance_id", "must be a non-empty string")
        self._record(
            self.WorkerProvisioningStarted, ctx, cloud_instance_id=cloud_instance_id,
            region=region or self.template.region,
            expected_ready_at=expected_ready_at or ctx.at + timedelta(minutes=self.template.startup_minutes),
        )

    def mark_ready(self, ip: str, ctx: CommandContext) -> None:
        if self.state is W.RUNNING and self.ip == ip:
            return
        self._require(W.RUNNING, "become ready", sources=frozenset({W.PROVISIONING}))
        if not isinstance(ip, str) or not ip:
            raise InvalidInput("ip", "must be a non-empty string")
        self._record(self.WorkerReady, ctx, ip=ip, cloud_instance_id=self.cloud_instance_id)

    def provisioning_failed(self, error: str, ctx: CommandContext) -> None:
        self._require(W.FAILED, "fail provisioning")
        self._record(self.WorkerProvisioningFailed, ctx, error=str(error),
                     affected_instance_ids=sorted(r.instance_id for r in self.ledger.reservations()))

    def start_draining(self, reason: str, ctx: CommandContext, *, timeout_hours: float | None = None) -> None:
        """RUNNING → DRAINING: accept nothing new, finish what it holds.

        Only an admin's drain may carry a timeout (SPEC §5): past ``drain_deadline`` its
        leftovers are terminated with reason ``drain_timeout``. Without one (the default,
        and always for the autoscaler) the drain never ends a lab.
        """
        self._require(W.DRAINING, "start draining")
        if timeout_hours is not None and (isinstance(timeout_hours, bool) or not timeout_hours > 0):
            raise InvalidInput("timeout_hours", f"must be a positive number of hours, got {timeout_hours!r}")
        deadline = ctx.at + timedelta(hours=float(timeout_hours)) if timeout_hours is not None else None
        self._record(
            self.DrainingStarted, ctx, reason=reason, drain_deadline=deadline,
            held_instance_ids=sorted(r.instance_id for r in self.ledger.reservations()),
        )

    def cancel_drain(self, ctx: CommandContext, *, reason: str = "admin") -> None:
        self._require(W.RUNNING, "cancel draining", sources=frozenset({W.DRAINING}))
        self._record(self.DrainCancelled, ctx, reason=reason)

    def stop(self, reason: str, ctx: CommandContext, *, force: bool = False) -> None:
        """RUNNING/DRAINING → STOPPING; refused while a reservation is active now, unless forced
        (drain timeout). Future reservations stay: a stopped worker restarts for them."""
        self._require(W.STOPPING, "stop")
        active = self.active_instance_ids(ctx.at)
        if active and not force:
            raise Conflict(f"worker {self.id} has active reservations ({', '.join(active)}); "
                           "drain it or force the stop")
        self._record(self.WorkerStopping, ctx, reason=reason, forced=bool(active), active_instance_ids=active)

    def mark_stopped(self, ctx: CommandContext) -> None:
        self._require(W.STOPPED, "be marked stopped")
        self._record(self.WorkerStopped, ctx)

    def request_restart(self, ctx: CommandContext, *, reason: str = "") -> None:
        self._require(W.PROVISIONING, "restart", sources=frozenset({W.STOPPED}))
        self._record(self.WorkerRestartRequested, ctx, reason=reason,
                     expected_ready_at=ctx.at + timedelta(minutes=self.template.restart_minutes))

    def terminate(self, reason: str, ctx: CommandContext, *, force: bool = False) -> list[str]:
        """Final. Refused while a reservation is active now unless ``force`` (worker lost,
        drain timeout, admin). Returns the instances whose reservations were dropped."""
        self._require(W.TERMINATED, "be terminated")
        if reason not in WORKER_TERMINATION_REASONS:
            raise InvalidInput("reason", f"must be one of {', '.join(sorted(WORKER_TERMINATION_REASONS))}, "
                               f"got {reason!r}")
        active = self.active_instance_ids(ctx.at)
        if active and not force:
            raise Conflict(f"worker {self.id} has active reservations ({', '.join(active)}); "
                           "force the termination to drop them")
        affected = sorted(r.instance_id for r in self.ledger.reservations())
        self._record(self.WorkerTerminated, ctx, reason=reason, forced=bool(active), affected_instance_ids=affected)
        return affected

    # -- reservations ------------------------------------------------------------------

    def reserve(
        self,
        instance_id: str,
        resources: Resources,
        nodes: int,
        port_names: Sequence[str],
        hold_start: datetime,
        hold_end: datetime,
        ctx: CommandContext,
        *,
        license_affinity: Sequence[str] | None = None,
    ) -> dict[str, int]:
        """Hold capacity, nodes and ports for ``instance_id`` over ``[hold_start, hold_end)``.

        Returns the allocated ports (lowest free first). Repeating the same reservation is a
        no-op returning the same ports. Raises ``IllegalTransition`` when the worker takes no
        new work, ``Conflict`` for a licence mismatch or a different existing hold, and
        ``InsufficientCapacity`` (with ``.reasons``) when it does not fit.
        """
        if not isinstance(instance_id, str) or not instance_id:
            raise InvalidInput("instance_id", "must be a non-empty string")
        names = list(port_names)
        existing = self.ledger.get(instance_id)
        if existing is not None:
            if (existing.hold_start, existing.hold_end) == (hold_start, hold_end) and sorted(existing.ports) == sorted(
                names
            ) and existing.resources == resources and existing.nodes == nodes:
                return dict(existing.ports)
            raise Conflict(f"instance {instance_id} already holds a different reservation on worker {self.id}; "
                           "release or extend it")
        if self.state not in RESERVABLE_STATES:
            raise IllegalTransition("Worker", self.state.value, "accept reservations")
        if license_affinity is not None and self.license_type not in {str(v) for v in license_affinity}:
            raise Conflict(f"worker {self.id} runs a {self.license_type} licence, "
                           f"instance accepts {', '.join(map(str, license_affinity))}")
        if len(set(names)) != len(names):
            raise InvalidInput("port_names", f"duplicate names in {names}")
        reasons = self.ledger.check(resources, nodes, len(names), hold_start, hold_end)
        if reasons:
            error = InsufficientCapacity(f"worker {self.id} cannot hold {instance_id}: " + "; ".join(reasons))
            error.reasons = reasons  # type: ignore[attr-defined]
            raise error
        ports = self.ledger.allocate_ports(names, hold_start, hold_end)
        self._record(
            self.CapacityReserved, ctx, instance_id=instance_id, resources=resources.to_dict(), nodes=nodes,
            ports=ports, hold_start=hold_start, hold_end=hold_end,
        )
        return ports

    def release(self, instance_id: str, ctx: CommandContext, *, reason: str = "") -> bool:
        """Give back an instance's hold; False (nothing recorded) when it holds nothing here."""
        reservation = self.ledger.get(instance_id)
        if reservation is None:
            return False
        self._record(
            self.CapacityReleased, ctx, instance_id=instance_id, resources=reservation.resources.to_dict(),
            nodes=reservation.nodes, ports=dict(reservation.ports), hold_start=reservation.hold_start,
            hold_end=reservation.hold_end, reason=reason,
        )
        return True

    def extend_reservation(self, instance_id: str, new_hold_end: datetime, ctx: CommandContext) -> Reservation:
        """Move a hold's end later (a lab still running at the end of its hold).

        Raises ``InsufficientCapacity`` when the tail does not fit (the caller then re-places
        the future reservations that collide); a no-op when the end is not later.
        """
        if self.state not in EXTENDABLE_STATES:
            raise IllegalTransition("Worker", self.state.value, "extend reservations")
        current = self.ledger.get(instance_id)
        if current is None:
            raise NotFound(f"instance {instance_id} holds no reservation on worker {self.id}")
        if new_hold_end <= current.hold_end:
            return current
        self.ledger.copy().extend(instance_id, new_hold_end)  # raises if the tail does not fit
        self._record(self.ReservationExtended, ctx, instance_id=instance_id,
                     previous_hold_end=current.hold_end, hold_end=new_hold_end)
        return self.ledger.get(instance_id)  # type: ignore[return-value]

