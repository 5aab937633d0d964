"""Classes (``/classes``): book every seat or none, then cancel, extend or collect them together.

Booking places every seat with the scheduler's placement pipeline on the live workers
(``FleetPlan``), each seat's reservation applied to the loaded worker before the next seat
is decided, and saves the class, every seat instance and every worker in ONE atomic save.
A class therefore exists with all its seats or not at all: a crash mid-booking leaves
nothing behind, and a concurrent writer on any worker makes the whole booking retry.
When a seat does not fit, nothing is saved and ``ClassDoesNotFit`` (409) reports which
seats fail and why, and the earliest start (searched ahead in quarter hours on the current
fleet) at which the whole class would fit. ``queue: true`` books the seats PENDING instead:
the scheduler places them as workers come (the autoscaler launches them for the demand).

Idempotency is the instances' scheme: with an ``Idempotency-Key`` the class id is
``uuid5(caller, key)`` and the seats' ids are ``uuid5(class id, owner)``; the same key and
body again returns the same class, another body is a 409.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from domain.instance import InstanceState, LabletInstance
from domain.lab_class import MAX_SEATS, LabClass
from domain.timeslot import Timeslot, hold_window, validate_timeslot
from domain.worker import Worker
from processors.aggregates import load_or_none
from processors.commands.extension import ExtensionRefused, ExtensionService
from processors.commands.fleet_plan import FleetPlan, NotPlaced
from processors.commands.instances import (
    Caller,
    Forbidden,
    IdempotencyKeyReused,
    InstanceService,
    InstanceStore,
    _RequestContext,
    _service_subject,
    validate_idempotency_key,
)
from processors.commands.workspace import Workspace
from processors.retry import retry_on_conflict

CLASS_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrm:class-idempotency-key")
SEAT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrm:class-seat")
#: who may book and drive classes (instructors run them, services such as an exam system book them)
CLASS_ROLES = frozenset({"admin", "instructor", "service"})
#: how far ahead "when would the whole class fit" looks, in steps of ``SEARCH_STEP``
SEARCH_STEP = timedelta(minutes=15)
SEARCH_STEPS = 96
REPORTED_SEATS = 20
S = InstanceState


class ClassDoesNotFit(Conflict):
    title = "Class does not fit"

    def __init__(self, detail: str, *, unplaced: list[dict[str, Any]], unplaced_count: int,
                 placed_count: int, earliest_fit: datetime | None, searched_until: datetime) -> None:
        super().__init__(detail)
        self.fields = {"unplaced": unplaced, "unplaced_count": unplaced_count, "placed_count": placed_count,
                       "earliest_fit": earliest_fit.isoformat() if earliest_fit else None,
                       "searched_until": searched_until.isoformat()}

    def problem_fields(self) -> dict[str, Any]:
        return self.fields


@dataclass(frozen=True)
class ClassRequest:
    definition: str
    owners: tuple[str, ...]
    timeslot_start: datetime | None = None
    duration_minutes: int | None = None
    timeslot_end: datetime | None = None
    version: str | None = None
    queue: bool = False

    def fingerprint(self) -> str:
        def canonical(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.astimezone(UTC).isoformat()
            return list(value) if isinstance(value, tuple) else value

        body = {k: canonical(v) for k, v in sorted(asdict(self).items())}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class ClassBooked:
    class_id: str
    position: int
    created: bool
    seats: int


@dataclass(frozen=True)
class ClassChanged:
    class_id: str
    instance_ids: list[str]
    position: int


@dataclass
class _Plan:
    instances: list[LabletInstance] = field(default_factory=list)
    unplaced: list[dict[str, Any]] = field(default_factory=list)


def seat_instance_id(class_id: str, owner_id: str) -> str:
    return f"{LabletInstance.stream_prefix()}-{uuid5(SEAT_NAMESPACE, chr(10).join((class_id, owner_id)))}"


def class_id_for(caller: Caller, key: str | None) -> str:
    if key is None:
        from uuid import uuid4

        return f"{LabClass.stream_prefix()}-{uuid4()}"
    return f"{LabClass.stream_prefix()}-{uuid5(CLASS_NAMESPACE, chr(10).join((caller.actor, key)))}"


class ClassService:
    def __init__(
        self,
        store: InstanceStore,
        instances: InstanceService,
        extensions: ExtensionService,
        live_workers: Callable[[], list[str]],
        *,
        instantiation_lead: timedelta = timedelta(minutes=15),
        teardown_margin: timedelta = timedelta(minutes=30),
    ) -> None:
        self.store = store
        self.instances = instances
        self.extensions = extensions
        self.live_workers = live_workers
        self.lead = instantiation_lead
        self.margin = teardown_margin

    # -- reads ---------------------------------------------------------------------------
    def get(self, class_id: str, caller: Caller) -> LabClass:
        self._require_role(caller)
        found = load_or_none(self.store, class_id, LabClass) if class_id.startswith("LabClass-") else None
        if found is None or (caller.role == "service" and found.booked_by != caller.actor):
            raise NotFound(f"class {class_id!r} not found")
        return found

    # -- booking -------------------------------------------------------------------------
    def book(self, request: ClassRequest, caller: Caller, ctx: CommandContext, *,
             idempotency_key: str | None = None) -> ClassBooked:
        self._require_role(caller)
        owners = _validated_owners(request.owners)
        key = validate_idempotency_key(idempotency_key) if idempotency_key is not None else None
        class_id = class_id_for(caller, key)
        fingerprint = request.fingerprint()
        book_ctx = _RequestContext(at=ctx.at, actor=ctx.actor, causation_id=ctx.causation_id,
                                   correlation_id=ctx.correlation_id, idempotency_key=key or "",
                                   request_fingerprint=fingerprint if key else "")

        def attempt() -> ClassBooked:
            if key is not None and self.store.exists(class_id):
                return self._replay(class_id, fingerprint, key)
            return self._book(request, owners, class_id, book_ctx)

        return retry_on_conflict(attempt)

    def _book(self, request: ClassRequest, owners: list[str], class_id: str, ctx: CommandContext) -> ClassBooked:
        definition = self.instances._definition(request.definition)
        try:
            version = definition.version_for_new_instance(request.version)
        except NotFound as error:
            raise InvalidInput("version", error.detail) from None
        timeslot = validate_timeslot(request.timeslot_start, request.timeslot_end, now=ctx.at,
                                     max_duration_minutes=version.max_duration_minutes,
                                     duration_minutes=request.duration_minutes)
        seats = [LabletInstance.request(version, owner, timeslot, ctx, reservation_id=class_id,
                                        instance_id=seat_instance_id(class_id, owner)) for owner in owners]
        workspace = Workspace(self.store)
        workspace.add(*seats)
        if self.instances.quota is not None:
            self.instances.quota.charge(workspace, seats, _service_subject(ctx.actor), ctx)
        if not request.queue:
            worker_ids = self.live_workers()
            plan = FleetPlan(workspace, worker_ids, lead=self.lead)
            unplaced = self._place_all(plan, seats, timeslot, ctx)
            if unplaced:
                raise self._does_not_fit(worker_ids, seats, timeslot, unplaced, ctx)
        lab_class = LabClass.book(
            class_id=class_id, definition_name=version.name, definition_version=version.version,
            timeslot_start=timeslot.start, timeslot_end=timeslot.end, queued=request.queue,
            seats=[{"owner_id": s.owner_id, "instance_id": s.id} for s in seats], ctx=ctx,
        )
        workspace.add(lab_class)
        return ClassBooked(class_id, workspace.save(), True, len(seats))

    def _place_all(self, plan: FleetPlan, seats: list[LabletInstance], timeslot: Timeslot,
                   ctx: CommandContext) -> list[dict[str, Any]]:
        start, end = hold_window(timeslot.start, timeslot.end, ctx.at, self.lead, self.margin)
        unplaced: list[dict[str, Any]] = []
        for seat in seats:
            placed = plan.place(seat, start, end, ctx)
            if isinstance(placed, NotPlaced):
                unplaced.append({"owner_id": seat.owner_id, "reasons": placed.reasons[:5]})
                continue
            decision_id = f"{seat.id}@placement"
            seat.record_placement_decided(decision_id, placed.worker.id, placed.record, ctx)
            seat.schedule(placed.worker.id, placed.ports, start, end, decision_id, ctx)
        return unplaced

    def _does_not_fit(self, worker_ids: list[str], seats: list[LabletInstance], timeslot: Timeslot,
                      unplaced: list[dict[str, Any]], ctx: CommandContext) -> ClassDoesNotFit:
        """Which seats fail now, and the earliest start at which all of them would fit."""
        fresh = {wid: w for wid in worker_ids if (w := load_or_none(self.store, wid, Worker)) is not None}
        base = timeslot.start or ctx.at
        length = timeslot.end - base
        earliest: datetime | None = None
        for step in range(1, SEARCH_STEPS + 1):
            start = base + step * SEARCH_STEP
            trial = _Copies(copy.deepcopy(fresh))
            plan = FleetPlan(trial, list(fresh), lead=self.lead)
            shifted = Timeslot(start, start + length)
            if all(not isinstance(plan.place(seat, *hold_window(start, shifted.end, ctx.at, self.lead, self.margin),
                                             ctx), NotPlaced) for seat in seats):
                earliest = start
                break
        until = base + SEARCH_STEPS * SEARCH_STEP
        when = (f"the whole class would fit at {earliest.isoformat()} on the current fleet" if earliest
                else f"it would not fit on the current fleet before {until.isoformat()}; add workers or book with "
                     "queue: true")
        return ClassDoesNotFit(
            f"{len(unplaced)} of {len(seats)} seats do not fit at {base.isoformat()}: nothing was booked; {when}",
            unplaced=unplaced[:REPORTED_SEATS], unplaced_count=len(unplaced),
            placed_count=len(seats) - len(unplaced), earliest_fit=earliest, searched_until=until,
        )

    def _replay(self, class_id: str, fingerprint: str, key: str) -> ClassBooked:
        events = self.store.read_stream(class_id)
        recorded = events[0].event.metadata.get("request_fingerprint") if events else None
        if recorded != fingerprint:
            raise IdempotencyKeyReused(f"Idempotency-Key {key!r} was used for a different class ({class_id}); "
                                       "use a new key for a new class")
        lab_class: LabClass = self.store.get(class_id)
        return ClassBooked(class_id, self.store.max_position(), False, len(lab_class.seats))

    # -- the whole class at once -----------------------------------------------------------
    def cancel(self, class_id: str, caller: Caller, ctx: CommandContext) -> ClassChanged:
        """Terminate every live seat and give back its reservation, in one save."""

        def attempt() -> ClassChanged:
            workspace = Workspace(self.store)
            lab_class = self._loaded(workspace, class_id, caller)
            reason = "admin" if caller.sees_all else "cancelled"
            ended: list[str] = []
            for seat in self._seats(workspace, lab_class):
                if not seat.is_live:
                    continue
                held_on = seat.worker_id if seat.holds_capacity else None
                seat.terminate(reason, ctx, detail=f"class {class_id} cancelled by {caller.actor}")
                worker = load_or_none(workspace, held_on, Worker) if held_on else None
                if worker is not None:
                    worker.release(seat.id, ctx, reason=f"class {class_id} cancelled")
                ended.append(seat.id)
            lab_class.cancel(f"by {caller.actor}", ended, ctx)
            return ClassChanged(class_id, ended, workspace.save())

        return retry_on_conflict(attempt)

    def extend(self, class_id: str, minutes: int, caller: Caller, ctx: CommandContext) -> ClassChanged:
        """Every seat still running or booked runs ``minutes`` longer — all of them, or none."""

        def attempt() -> ClassChanged:
            workspace = Workspace(self.store)
            lab_class = self._loaded(workspace, class_id, caller)
            extended: list[str] = []
            for seat in self._seats(workspace, lab_class):
                if not seat.is_live or seat.state not in _EXTENDABLE or seat.timeslot_end <= ctx.at:
                    continue
                try:
                    self.extensions.extend_in(workspace, seat, minutes, ctx)
                except ExtensionRefused as error:
                    raise ExtensionRefused(f"seat of {seat.owner_id} ({seat.id}): {error.detail}; "
                                           "no seat was extended", reasons=error.reasons,
                                           longest_extension_minutes=error.longest_extension_minutes) from None
                extended.append(seat.id)
            if not extended:
                raise IllegalTransition("LabClass", lab_class.state, "be extended (no seat is still booked)")
            lab_class.record_extended(minutes, lab_class.timeslot_end + timedelta(minutes=minutes), extended, ctx)
            return ClassChanged(class_id, extended, workspace.save())

        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            raise InvalidInput("minutes", "must be a positive whole number of minutes")
        return retry_on_conflict(attempt)

    def collect(self, class_id: str, caller: Caller, ctx: CommandContext) -> ClassChanged:
        """Every READY or RUNNING seat goes to collection (graded definitions), in one save."""

        def attempt() -> ClassChanged:
            workspace = Workspace(self.store)
            lab_class = self._loaded(workspace, class_id, caller)
            collected: list[str] = []
            for seat in self._seats(workspace, lab_class):
                if seat.state in (S.READY, S.RUNNING):
                    seat.start_collection(ctx, trigger=f"class {class_id}")
                    collected.append(seat.id)
            if not collected:
                raise IllegalTransition("LabClass", lab_class.state, "be collected (no seat is READY or RUNNING)")
            lab_class.record_collected(collected, ctx)
            return ClassChanged(class_id, collected, workspace.save())

        return retry_on_conflict(attempt)

    # -- internals ---------------------------------------------------------------------------
    def _require_role(self, caller: Caller) -> None:
        if caller.role not in CLASS_ROLES:
            raise Forbidden(f"role {caller.role} may not book or run classes")

    def _loaded(self, workspace: Workspace, class_id: str, caller: Caller) -> LabClass:
        self.get(class_id, caller)  # authorisation (404 for another service's class)
        return workspace.get(class_id)

    @staticmethod
    def _seats(workspace: Workspace, lab_class: LabClass) -> list[LabletInstance]:
        return [workspace.get(instance_id) for instance_id in lab_class.instance_ids]


_EXTENDABLE = frozenset({S.PENDING, S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING})


class _Copies:
    """A read-only stand-in store over copied workers (the what-if search changes only copies)."""

    def __init__(self, workers: dict[str, Worker]) -> None:
        self.workers = workers

    def get(self, aggregate_id: str, version: int | None = None) -> Any:
        if aggregate_id not in self.workers:
            raise NotFound(aggregate_id)
        return self.workers[aggregate_id]


def _validated_owners(owners: tuple[str, ...] | list[str]) -> list[str]:
    found = list(owners)
    if not found or len(found) > MAX_SEATS:
        raise InvalidInput("owners", f"a class has 1-{MAX_SEATS} owners, got {len(found)}")
    for owner in found:
        if not isinstance(owner, str) or not owner or len(owner) > 200 or not owner.isprintable():
            raise InvalidInput("owners", f"each owner id is 1-200 printable characters, got {owner!r}")
    if len(set(found)) != len(found):
        duplicates = sorted({o for o in found if found.count(o) > 1})
        raise InvalidInput("owners", f"each owner holds one seat; repeated: {', '.join(duplicates[:5])}")
    return found


__all__ = ["CLASS_ROLES", "ClassBooked", "ClassChanged", "ClassDoesNotFit", "ClassRequest", "ClassService",
           "seat_instance_id"]
