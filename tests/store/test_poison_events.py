"""No poison events (issue 16): an event a read model cannot apply or write is parked; the rest goes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.container import discover_projections
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.timeslot import Timeslot
from projections.events import StoredEvent
from projections.parking import list_parked
from projections.projection import Projection
from projections.readmodel import ReadModelTx, Table
from projections.readmodels.instances import INSTANCES
from projections.runner import ProjectionRunner
from tests.store.aggregates import Counter
from tests.store.conftest import Backend
from tests.store.projections_for_tests import CounterSummary

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
REQ = InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=1, port_names=("serial_1",),
                           license_affinity=("PERSONAL",), max_duration_minutes=120)


def book(reservation_id: str, owner_id: str = "student") -> LabletInstance:
    return LabletInstance.request_with(
        definition_name="ccna", definition_version="1.0.0", requirements=REQ, grading_enabled=False,
        owner_id=owner_id, timeslot=Timeslot(T0, T0 + timedelta(hours=1)),
        ctx=CommandContext(at=T0 - timedelta(hours=1), actor="user:student"), reservation_id=reservation_id)


def test_a_nul_in_an_event_never_stops_the_read_models(backend: Backend) -> None:
    """The issue's request: a reservation_id with U+0000 (PostgreSQL refuses it in text)."""
    store, models = backend.event_store(), backend.read_models()
    poison, after = book("x\x00", owner_id="student\x00"), book("exam-8")
    store.save(book("exam-7"))
    poison_position = store.save(poison)
    store.save(after)
    runner = ProjectionRunner(store, models, discover_projections(), batch_size=50)

    runner.catch_up()

    head = store.max_position()
    assert all(models.checkpoint(p.name).position == head for p in discover_projections())
    assert models.get(INSTANCES.name, after.id)["reservation_id"] == "exam-8"  # the rest went on
    parked = list_parked(models)
    if backend.kind == "postgres":
        assert {p.projection for p in parked} >= {"instances", "scheduling"}
        assert {(p.position, p.stage) for p in parked} == {(poison_position, "write")}
        assert all("\x00" not in p.error for p in parked)  # the error itself is storable
        assert models.get(INSTANCES.name, poison.id) is None
    else:  # SQLite and memory store the NUL as it is
        assert parked == []
        assert models.get(INSTANCES.name, poison.id)["reservation_id"] == "x\x00"

    # A follower keeps going too: the next booking is applied.
    later = book("exam-9")
    store.save(later)
    runner.catch_up()
    assert models.get(INSTANCES.name, later.id)["reservation_id"] == "exam-9"


class LabelIndex(Projection):
    """Indexes each counter's label as text: a lone surrogate cannot be stored by SQLite or PostgreSQL."""

    name = "label_index"
    tables = (Table("labels", {"label": str}),)

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        if event.event_name == "Bumped":
            label = "\ud800" if event.event.by == 13 else f"bump-{event.event.by}"
            tx.put("labels", f"{event.stream_id}@{event.version}", {"label": label, "position": event.position})


def test_a_write_the_database_refuses_parks_that_event_only(backend: Backend) -> None:
    store, models = backend.event_store(), backend.read_models()
    counter = Counter.open("c")
    for by in (1, 13, 2, 3):
        counter.bump(by)
    store.save(counter)
    runner = ProjectionRunner(store, models, [LabelIndex(), CounterSummary()], batch_size=100)

    runner.catch_up()

    labels = sorted(d["label"] for d in models.query("labels", limit=100).items)
    assert models.get("counters", counter.id)["total"] == 19  # the other projection has every event
    assert models.checkpoint("label_index").position == store.max_position()
    if backend.kind == "memory":  # keeps any Python string
        assert len(labels) == 4 and list_parked(models) == []
        return
    assert labels == ["bump-1", "bump-2", "bump-3"]
    [parked] = list_parked(models)
    assert (parked.projection, parked.event_type, parked.stage, parked.status) == ("label_index", "Bumped", "write", "parked")
    assert "surrogates not allowed" in parked.error

    runner.skip_parked("label_index", parked.position)
    assert list_parked(models) == []
    assert [p.status for p in list_parked(models, status=None)] == ["skipped"]
