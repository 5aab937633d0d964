"""Forget a person (GDPR erasure in an event store), as an admin asks it.

Events are never rewritten: personal fields in them are sealed with a key per person
(adapters/eventstore/personal_data_mapper.py), so forgetting is destroying that key. Then:

1. the erasure is recorded (``PersonErasure``: the pseudonym only), for the audit trail;
2. after every process's key cache has expired (``keys.cache_seconds``), the read models
   are rebuilt from the log, where the person now reads as ``erased-…``; counts, capacity,
   timelines and everyone else's data come back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from domain.context import CommandContext
from domain.errors import InvalidInput, NotFound
from domain.erasure import PersonErasure
from domain.personal_data import erased_name, is_erased
from processors.ports.personal_data import PersonKeys


class ErasureStore(Protocol):
    def save(self, *aggregates: Any) -> int: ...


@dataclass(frozen=True)
class Forgotten:
    subject_id: str
    erased_as: str
    position: int


@dataclass
class PeopleService:
    keys: PersonKeys
    store: ErasureStore
    # Rebuilds the read models once ``delay`` seconds have passed (coalesced, in the background).
    refresh_read_models: Callable[[float], None]

    def forget(self, owner_id: str, ctx: CommandContext) -> Forgotten:
        if not owner_id or is_erased(owner_id):
            raise InvalidInput("owner_id", "must name a person (not empty, not already erased)")
        subject_id = self.keys.forget(owner_id)
        if subject_id is None:
            raise NotFound("no personal data is recorded for this person")
        position = self.store.save(PersonErasure.record(ctx, subject_id))
        self.refresh_read_models(self.keys.cache_seconds)
        return Forgotten(subject_id=subject_id, erased_as=erased_name(subject_id), position=position)
