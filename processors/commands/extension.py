"""Extending a lab (``POST /instances/{id}/extend``) and its automatic twin, the overrun.

An extension moves the lab's ``timeslot_end`` (and so its hold on the worker) later by N
minutes. It is granted when the worker's ledger allows the longer hold (capacity, nodes,
ports), the definition's ``max_duration_minutes`` and the owner's quota allow the longer
lab. If only the ledger is in the way, the *future* reservations that collide (labs that
have not started instantiating and are not inside the instantiation lead) are re-placed on
other workers first — never the live lab. Only when that fails too is it refused, with the
reasons and the longest extension possible now (``ExtensionRefused``, a 409).

Everything one extension changes — the instance, its worker, the moved instances and the
workers they move to — is saved in one atomic save, so a concurrent writer on any of those
streams makes the whole extension retry from fresh state (optimistic concurrency).

Overrun (SPEC §4 hold window): a lab still active near the end of its hold gets its hold
(not its timeslot) extended by ``step``. The live lab has priority: the colliding future
reservations are re-placed elsewhere when possible, else sent back to the queue
(``InstanceRequeued``, the scheduler places them again or the autoscaler adds a worker);
when even that leaves no room, the hold is extended as far as it fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.base import event_id
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput
from domain.extension import MINUTE, extension_fits, longest_extension, plan_room
from domain.instance import InstanceState, LabletInstance
from domain.ledger import Reservation
from domain.worker import Worker
from processors.aggregates import load_or_none
from processors.commands.fleet_plan import FleetPlan, NotPlaced, Placed
from processors.commands.workspace import Workspace
from processors.retry import retry_on_conflict

S = InstanceState
#: a booked lab can be extended until its timeslot ends (then collection and teardown start)
EXTENDABLE_STATES = frozenset({S.PENDING, S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING})
#: labs whose reservation is held by a lab that is (or is about to be) on CML
ACTIVE_STATES = frozenset({S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.GRADING, S.STOPPING})
MAX_EXTENSION_MINUTES = 24 * 60


class ExtensionRefused(Conflict):
    """The longer lab does not fit (409); says why and how long it could be extended now."""

    title = "Extension refused"

    def __init__(self, detail: str, *, reasons: list[str], longest_extension_minutes: int) -> None:
        super().__init__(detail)
        self.reasons = reasons
        self.longest_extension_minutes = longest_extension_minutes

    def problem_fields(self) -> dict[str, Any]:
        return {"reasons": self.reasons, "longest_extension_minutes": self.longest_extension_minutes}


class ExtensionStore(Protocol):
    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...


class QuotaGate(Protocol):
    def charge_extension(self, workspace: Workspace, instance: LabletInstance, new_end: datetime,
                         ctx: CommandContext) -> None: ...


@dataclass(frozen=True)
class ExtensionSettings:
    instantiation_lead: timedelta = timedelta(minutes=15)
    teardown_margin: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Extended:
    instance_id: str
    state: str
    timeslot_end: datetime
    hold_end: datetime | None
    moved: tuple[str, ...]  # instances re-placed on other workers to make room
    requeued: tuple[str, ...]  # overrun only: instances sent back to the queue
    position: int


class ExtensionService:
    def __init__(
        self,
        store: ExtensionStore,
        live_workers: Callable[[], list[str]],
        settings: ExtensionSettings | None = None,
        *,
        quota: QuotaGate | None = None,
    ) -> None:
        self.store = store
        self.live_workers = live_workers
        self.settings = settings or ExtensionSettings()
        self.quota = quota  # the owner's quota must allow the longer lab (QuotaExceeded, 409)

    # -- a caller asks ------------------------------------------------------------------
    def extend(self, instance: Callable[[], LabletInstance], minutes: int, ctx: CommandContext) -> Extended:
        """``instance`` loads the (authorised) instance afresh: it is called on every retry."""
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_EXTENSION_MINUTES:
            raise InvalidInput("minutes", f"must be a whole number of minutes, 1-{MAX_EXTENSION_MINUTES}")
        def attempt() -> Extended:
            workspace = Workspace(self.store)
            loaded = instance()
            workspace.add(loaded)
            moved = self.extend_in(workspace, loaded, minutes, ctx)
            return self._saved(loaded, moved, (), workspace.save())

        return retry_on_conflict(attempt)

    def extend_in(
        self, workspace: Workspace, instance: LabletInstance, minutes: int, ctx: CommandContext
    ) -> tuple[str, ...]:
        """Apply the extension to aggregates of ``workspace`` (the caller saves it); returns
        the instances moved out of the way. Raises ``ExtensionRefused`` and changes nothing
        that is saved when it does not fit."""
        if instance.state not in EXTENDABLE_STATES or instance.timeslot_end <= ctx.at:
            raise IllegalTransition("LabletInstance", instance.state.value,
                                    "be extended (only a booked lab whose timeslot has not ended)")
        limits = self._limits(instance, ctx)
        allowed = min(limits.values())
        new_end = instance.timeslot_end + minutes * MINUTE
        if minutes > allowed:
            self._refuse(instance, minutes, [_limit_reason(k, v) for k, v in limits.items() if v < minutes],
                         allowed, ctx)
        if self.quota is not None:
            self.quota.charge_extension(workspace, instance, new_end, ctx)
        if not instance.holds_capacity:  # PENDING: no reservation yet, the scheduler places the longer lab
            instance.extend_timeslot(new_end, None, ctx, minutes=minutes)
            return ()
        worker = self._worker_of(workspace, instance)
        new_hold_end = max(instance.hold_end or new_end, new_end + self.settings.teardown_margin)
        reasons = extension_fits(worker.ledger, instance.id, new_hold_end)
        moved: list[LabletInstance] = []
        plan: FleetPlan | None = None
        if reasons:
            longest_now = self._longest(worker, instance, allowed)  # before anything moves
            movable = self._movable(workspace, worker, instance, new_hold_end, ctx)
            room = plan_room(worker.ledger, instance.id, new_hold_end, movable)
            if not room.fits:
                self._refuse(instance, minutes, list(room.reasons), longest_now, ctx)
            plan = FleetPlan(workspace, self.live_workers(), lead=self.settings.instantiation_lead)
            failed = self._move(plan, worker, instance, room.move, movable, ctx, moved)
            if failed:  # nothing was saved: the aggregates changed in memory are dropped
                self._refuse(instance, minutes, failed, longest_now, ctx)
        worker.extend_reservation(instance.id, new_hold_end, ctx)
        instance.extend_timeslot(new_end, new_hold_end, ctx, minutes=minutes)
        return tuple(m.id for m in moved)

    # -- the overrun watcher asks -------------------------------------------------------
    def overrun(self, instance_id: str, step: timedelta, ctx: CommandContext) -> Extended | None:
        """Extend the hold of an active lab near its end by ``step``; None when nothing to do."""
        return retry_on_conflict(lambda: self._overrun(Workspace(self.store), instance_id, step, ctx))

    def _overrun(self, workspace: Workspace, instance_id: str, step: timedelta,
                 ctx: CommandContext) -> Extended | None:
        instance = load_or_none(workspace, instance_id, LabletInstance)
        if instance is None or instance.state not in ACTIVE_STATES or instance.hold_end is None:
            return None
        worker = load_or_none(workspace, instance.worker_id, Worker)
        if worker is None or worker.ledger.get(instance.id) is None:
            return None
        wanted = max(instance.hold_end, ctx.at) + step
        movable = self._movable(workspace, worker, instance, wanted, ctx)
        room = plan_room(worker.ledger, instance.id, wanted, movable)
        moved: list[LabletInstance] = []
        requeued: list[LabletInstance] = []
        if room.move:
            plan = FleetPlan(workspace, self.live_workers(), lead=self.settings.instantiation_lead)
            for reservation in room.move:
                other = movable[reservation.instance_id]
                worker.release(other.id, ctx, reason=f"make room: {instance.id} overruns its hold")
                plan.changed(worker)
                other.unschedule(f"make room: {instance.id} overruns its hold", ctx)
                placed = plan.place(other, reservation.hold_start, reservation.hold_end, ctx, exclude=[worker.id])
                if isinstance(placed, Placed):
                    _schedule(other, placed, ctx)
                    moved.append(other)
                else:
                    requeued.append(other)  # queued: the scheduler or a new worker takes it
        if not room.fits:  # the rest of the way is held by labs that may not move: go as far as fits
            longest = longest_extension(worker.ledger, instance.id, int(step / MINUTE))
            if longest == 0:
                return None
            wanted = instance.hold_end + longest * MINUTE
        worker.extend_reservation(instance.id, wanted, ctx)
        instance.record_hold_extended(wanted, ctx)
        return self._saved(instance, tuple(m.id for m in moved), tuple(r.id for r in requeued), workspace.save())

    # -- internals -----------------------------------------------------------------------
    def _limits(self, instance: LabletInstance, ctx: CommandContext) -> dict[str, int]:
        """Minutes each rule still allows (the definition's maximum; quotas are checked apart)."""
        slot_start = instance.timeslot_start or instance.created_on
        length = instance.timeslot_end - slot_start
        by_duration = instance.requirements.max_duration_minutes - int(length / MINUTE)
        return {"max_duration_minutes": max(0, by_duration)}

    def _worker_of(self, workspace: Workspace, instance: LabletInstance) -> Worker:
        worker = load_or_none(workspace, instance.worker_id, Worker)
        if worker is None or worker.ledger.get(instance.id) is None:
            raise Conflict(f"instance {instance.id} holds no reservation on worker {instance.worker_id}")
        return worker

    def _movable(
        self, workspace: Workspace, worker: Worker, instance: LabletInstance, new_hold_end: datetime,
        ctx: CommandContext,
    ) -> dict[str, LabletInstance]:
        """The reservations in the way that may move: SCHEDULED labs not yet inside their lead."""
        current = worker.ledger.get(instance.id)
        assert current is not None
        found: dict[str, LabletInstance] = {}
        for reservation in worker.ledger.overlapping(current.hold_end, new_hold_end):
            if reservation.instance_id == instance.id:
                continue
            other = load_or_none(workspace, reservation.instance_id, LabletInstance)
            if other is None or other.state is not S.SCHEDULED or other.worker_id != worker.id:
                continue
            starts = other.timeslot_start
            if starts is None or starts - self.settings.instantiation_lead <= ctx.at:
                continue  # due to instantiate (or ASAP): it is as good as live
            found[other.id] = other
        return found

    def _move(
        self, plan: FleetPlan, worker: Worker, instance: LabletInstance, move: tuple[Reservation, ...],
        movable: dict[str, LabletInstance], ctx: CommandContext, moved: list[LabletInstance],
    ) -> list[str]:
        """Re-place each reservation in the way on another worker; the reasons of any that cannot."""
        failed: list[str] = []
        for reservation in move:
            other = movable[reservation.instance_id]
            worker.release(other.id, ctx, reason=f"make room: {instance.id} was extended")
            plan.changed(worker)
            placed = plan.place(other, reservation.hold_start, reservation.hold_end, ctx, exclude=[worker.id])
            if isinstance(placed, NotPlaced):
                failed.append(f"{other.id} (booked {reservation.hold_start.isoformat()}) is in the way and fits "
                              f"on no other worker: {'; '.join(placed.reasons[:3])}")
                continue
            other.unschedule(f"make room: {instance.id} was extended", ctx)
            _schedule(other, placed, ctx)
            moved.append(other)
        return failed

    def _longest(self, worker: Worker, instance: LabletInstance, allowed: int) -> int:
        """Whole minutes of timeslot the ledger allows now, as it is (nothing moved)."""
        current = worker.ledger.get(instance.id)
        if current is None:
            return 0
        # the hold must reach timeslot_end + margin; what it already covers beyond that is free
        covered = current.hold_end - (instance.timeslot_end + self.settings.teardown_margin)
        spare = max(0, int(covered / MINUTE))
        return min(allowed, spare + longest_extension(worker.ledger, instance.id, max(0, allowed - spare)))

    def _refuse(self, instance: LabletInstance, minutes: int, reasons: list[str], longest: int,
                ctx: CommandContext) -> None:
        raise ExtensionRefused(
            f"instance {instance.id} cannot be extended by {minutes} min at {ctx.at.isoformat()}; "
            f"the longest extension possible now is {longest} min",
            reasons=reasons, longest_extension_minutes=longest,
        )

    @staticmethod
    def _saved(instance: LabletInstance, moved: tuple[str, ...], requeued: tuple[str, ...],
               position: int) -> Extended:
        return Extended(instance.id, instance.state.value, instance.timeslot_end, instance.hold_end,
                        moved, requeued, position)


def _schedule(instance: LabletInstance, placed: Placed, ctx: CommandContext) -> None:
    decision_id = str(event_id(instance.id, instance.version + 1))
    instance.record_placement_decided(decision_id, placed.worker.id, placed.record, ctx)
    instance.schedule(placed.worker.id, placed.ports, placed.hold_start, placed.hold_end, decision_id, ctx)


def _limit_reason(rule: str, minutes: int) -> str:
    return f"max_duration_minutes: the definition allows {minutes} more minutes"
