"""Old events keep loading: the library's ``class_version`` + ``upcast_vX_vY`` on our events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eventsourcing.utils import clear_topic_cache

from domain.base import LrmAggregate
from tests.store.aggregates import ctx
from tests.store.conftest import Backend


class Sensor(LrmAggregate):
    class Installed(LrmAggregate.Created):
        room: str

    def __init__(self, room: str) -> None:
        self.room = room
        self.floor: int | None = None

    @classmethod
    def install(cls, room: str) -> Sensor:
        return cls._create_with(cls.Installed, ctx(), room=room)


class InstalledV2(LrmAggregate.Created):
    """Version 2 of ``Sensor.Installed``: adds ``floor``; v1 events get floor 0."""

    class_version = 2
    room: str
    floor: int

    @staticmethod
    def upcast_v1_v2(state: dict[str, object]) -> None:
        state["floor"] = 0


def _sensor_init_v2(self: Sensor, room: str, floor: int) -> None:
    self.room = room
    self.floor = floor


@pytest.fixture
def v1_classes() -> Iterator[None]:
    original_event, original_init = Sensor.Installed, Sensor.__init__
    yield
    Sensor.Installed, Sensor.__init__ = original_event, original_init  # type: ignore[method-assign]
    clear_topic_cache()


def test_v1_event_loads_as_v2_after_the_class_changes(backend: Backend, v1_classes: None) -> None:
    store = backend.event_store()
    sensor = Sensor.install("lab-1")
    store.save(sensor)
    stored_topic = store.read_all()[0].topic

    # "Deploy" the new code: same topic, new class with an upcaster.
    InstalledV2.__qualname__ = "Sensor.Installed"
    Sensor.Installed = InstalledV2  # type: ignore[misc]
    Sensor.__init__ = _sensor_init_v2  # type: ignore[method-assign]
    clear_topic_cache()

    (event,) = store.read_all()
    assert event.topic == stored_topic
    assert isinstance(event.event, InstalledV2) and event.event.floor == 0
    loaded = store.get(sensor.id)
    assert (loaded.room, loaded.floor) == ("lab-1", 0)

    # New events are written as v2 and read back unchanged.
    fresh = Sensor._create_with(InstalledV2, ctx(), room="lab-2", floor=3)
    store.save(fresh)
    assert store.get(fresh.id).floor == 3
