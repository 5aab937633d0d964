"""The record that a person was forgotten (GDPR erasure), kept for the audit trail.

It names only the pseudonymous ``subject_id`` the person's events carry and how they read
from now on (``erased_as``): never who they were. Erasure itself is destroying the person's
key (processors/commands/people.py); this event is what an auditor and every process see.
"""

from __future__ import annotations

from uuid import UUID

from domain.base import LrmAggregate, stream_id
from domain.context import CommandContext
from domain.personal_data import erased_name


class PersonErasure(LrmAggregate):
    class Forgotten(LrmAggregate.Created):
        subject_id: str
        erased_as: str

        def apply(self, aggregate: PersonErasure) -> None:
            aggregate.subject_id = self.subject_id
            aggregate.erased_as = self.erased_as

    @classmethod
    def record(cls, ctx: CommandContext, subject_id: str) -> PersonErasure:
        # One stream per subject: forgetting the same person twice collides (a conflict),
        # and the id is derived from nothing but the pseudonym.
        return cls._create_with(cls.Forgotten, ctx, id=stream_id("PersonErasure", UUID(subject_id)),
                                subject_id=subject_id, erased_as=erased_name(subject_id))
