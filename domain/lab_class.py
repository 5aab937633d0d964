"""A class: many seats (one lablet instance per owner) booked, changed and ended together.

The seats are ordinary ``LabletInstance`` streams whose ``reservation_id`` is the class id;
this aggregate records what the class as a whole was asked to do. Booking saves the class,
every seat's instance and every worker reservation in ONE atomic save, so a class exists
with all its seats or not at all (a crash mid-booking leaves nothing; a retry with the same
Idempotency-Key finds the class or books it once).

Events: ``ClassBooked`` (definition version, timeslot, seats ``[{owner_id, instance_id}]``),
``ClassExtended`` (minutes, new end), ``ClassCollected`` (seats sent to collection),
``ClassCancelled`` (reason, the seats terminated).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate
from domain.context import CommandContext
from domain.errors import IllegalTransition, InvalidInput

MAX_SEATS = 500
BOOKED, CANCELLED = "BOOKED", "CANCELLED"


class LabClass(LrmAggregate):
    class ClassBooked(LrmAggregate.Created):
        definition_name: str
        definition_version: str
        timeslot_start: datetime | None
        timeslot_end: datetime
        seats: list[dict[str, str]]
        queued: bool  # True: seats were left PENDING for the scheduler (no reservation required)

        def apply(self, aggregate: LabClass) -> None:
            aggregate.definition_name = self.definition_name
            aggregate.definition_version = self.definition_version
            aggregate.timeslot_start = self.timeslot_start
            aggregate.timeslot_end = self.timeslot_end
            aggregate.seats = [dict(s) for s in self.seats]
            aggregate.queued = self.queued
            aggregate.state = BOOKED
            aggregate.booked_by = str(self.metadata.get("actor", ""))

    class ClassExtended(LrmAggregate.Event):
        minutes: int
        previous_timeslot_end: datetime
        timeslot_end: datetime
        instance_ids: list[str]

        def apply(self, aggregate: LabClass) -> None:
            aggregate.timeslot_end = self.timeslot_end

    class ClassCollected(LrmAggregate.Event):
        instance_ids: list[str]

        def apply(self, aggregate: LabClass) -> None:
            pass

    class ClassCancelled(LrmAggregate.Event):
        reason: str
        instance_ids: list[str]

        def apply(self, aggregate: LabClass) -> None:
            aggregate.state = CANCELLED

    if TYPE_CHECKING:
        definition_name: str
        definition_version: str
        timeslot_start: datetime | None
        timeslot_end: datetime
        seats: list[dict[str, str]]
        queued: bool
        state: str
        booked_by: str

    @classmethod
    def book(
        cls, *, class_id: str, definition_name: str, definition_version: str, timeslot_start: datetime | None,
        timeslot_end: datetime, seats: list[dict[str, str]], queued: bool, ctx: CommandContext,
    ) -> LabClass:
        if not seats or len(seats) > MAX_SEATS:
            raise InvalidInput("owners", f"a class has 1-{MAX_SEATS} seats, got {len(seats)}")
        owners = [s["owner_id"] for s in seats]
        if len(set(owners)) != len(owners):
            raise InvalidInput("owners", "an owner may hold one seat of a class")
        return cls._create_with(
            cls.ClassBooked, ctx, id=class_id, definition_name=definition_name,
            definition_version=definition_version, timeslot_start=timeslot_start, timeslot_end=timeslot_end,
            seats=[dict(s) for s in seats], queued=queued,
        )

    @property
    def instance_ids(self) -> list[str]:
        return [s["instance_id"] for s in self.seats]

    def _require_booked(self, action: str) -> None:
        if self.state != BOOKED:
            raise IllegalTransition("LabClass", self.state, action)

    def record_extended(self, minutes: int, timeslot_end: datetime, instance_ids: list[str],
                        ctx: CommandContext) -> None:
        self._require_booked("be extended")
        self._record(self.ClassExtended, ctx, minutes=minutes, previous_timeslot_end=self.timeslot_end,
                     timeslot_end=timeslot_end, instance_ids=list(instance_ids))

    def record_collected(self, instance_ids: list[str], ctx: CommandContext) -> None:
        self._require_booked("be collected")
        self._record(self.ClassCollected, ctx, instance_ids=list(instance_ids))

    def cancel(self, reason: str, instance_ids: list[str], ctx: CommandContext) -> None:
        self._require_booked("be cancelled")
        self._record(self.ClassCancelled, ctx, reason=reason, instance_ids=list(instance_ids))

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "definition_name": self.definition_name,
                "definition_version": self.definition_version, "timeslot_start": self.timeslot_start,
                "timeslot_end": self.timeslot_end, "queued": self.queued, "booked_by": self.booked_by,
                "booked_at": self.created_on}
