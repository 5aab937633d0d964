"""The one eventsourcing Application that holds every LRM aggregate.

One application means one notification log: a single global order over all aggregates,
which projections and processors follow with a single checkpoint each.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import Mapper, Recording
from eventsourcing.utils import Environment, EnvType

from adapters.eventstore.moved_topics import register_moved_topics
from adapters.eventstore.person_keys import MemoryPersonKeys
from adapters.eventstore.personal_data_mapper import PersonalDataMapper
from processors.ports.personal_data import PersonKeys


class LrmApplication(Application[str]):
    # The name prefixes the PostgreSQL table ("lrm_events") and settings keys.
    name = "Lrm"

    def __init__(self, env: EnvType | None = None, person_keys: PersonKeys | None = None) -> None:
        # Personal fields are sealed with a key per person (domain/personal_data.py); keys
        # live beside the events, never in them. Memory keys suit only the memory store.
        self.person_keys: PersonKeys = person_keys if person_keys is not None else MemoryPersonKeys()
        # Registered per store, not once per process: the library's topic cache can be
        # cleared (its own tests do), and a store opened afterwards must still read old logs.
        register_moved_topics()
        super().__init__(env)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # The library merges os.environ into the settings; we don't, so that the
        # configuration passed by the composition root is the whole truth (a stray
        # PERSISTENCE_MODULE or POSTGRES_ENABLE_DB_FUNCTIONS in the shell can't leak in).
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[str]:
        # The library's compressor and whole-event cipher settings still apply on top.
        return PersonalDataMapper(self.construct_transcoder(), self.person_keys,
                                  compressor=self.factory.compressor(), cipher=self.factory.cipher())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[str]]:
        """The library's ``save`` without its per-object ``isinstance`` against two
        runtime-checkable protocols (~70 µs a save: a tenth of an in-memory save); the same
        steps, in the same order, for what LRM saves: aggregates of its own base class."""
        if kwargs or not all(isinstance(obj, BaseAggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[str] = ProcessingEvent()
        for obj in objs:
            processing_event.events.extend(obj.collect_events())
            processing_event.aggregates[obj.id] = obj
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, as its save calls it
        return recordings
