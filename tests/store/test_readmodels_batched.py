"""The real read models, built the fast way, equal the plain way after random lab histories.

The fast way is the runner's: events filtered by each projection's ``handled_events``,
batches of documents changed in place and written once (``put_many``), a shadow rebuild
carrying documents across batches. The plain way hands every event to every projection's
``handle`` in a transaction of its own, with no batch in between (documents copied in and
out of the store). Any difference (an event class left out of ``handled_events``, a document
mutated behind the batch's back, a cached timestamp text) shows up as a different table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.eventstore import open_event_store
from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from api.container import discover_projections
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.timeslot import Timeslot
from domain.worker import Worker
from domain.worker_template import parse_templates_yaml
from projections.runner import ProjectionRunner

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
REQ = InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=2, port_names=("serial_1",),
                           license_affinity=("PERSONAL",), max_duration_minutes=120)

# One lab: how far its life goes (0 = requested only … 11 = terminated and released), whether
# placement failed first, whether its first instantiation failed, whether it was requeued.
labs = st.lists(st.tuples(st.integers(0, 11), st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=12)


def ctx(at: datetime, actor: str = "system:test") -> CommandContext:
    return CommandContext(at=at, actor=actor)


def play(store: Any, plan: list[tuple[int, bool, bool, bool]], drain: bool) -> None:
    spec = next(t for t in parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())
                if t.name == "personal-standard")
    fleet = []
    for n in range(2):
        worker = Worker.request(spec, ctx(T0))
        worker.start_provisioning(f"i-{n:017x}", ctx(T0))
        worker.mark_ready(f"10.0.0.{n}", ctx(T0 + timedelta(minutes=20)))
        fleet.append(worker)
    store.save(*fleet)
    for number, (depth, placement_failed, failed_once, requeued) in enumerate(plan):
        worker = fleet[number % 2]
        start = T0 + timedelta(hours=1, minutes=70 * (number // 2))
        end = start + timedelta(minutes=60)
        lab = LabletInstance.request_with(
            definition_name="ccna", definition_version="1.0.0", requirements=REQ, grading_enabled=False,
            owner_id=f"student-{number}", timeslot=Timeslot(start, end), ctx=ctx(start - timedelta(hours=1)))
        hold_start, hold_end = start - timedelta(minutes=15), end + timedelta(minutes=5)
        steps = [
            lambda: placement_failed and lab.record_placement_failed(
                f"d-{number}-0", "no room", {"policy": "p"}, ctx(start - timedelta(minutes=59, seconds=30))),
            lambda: _schedule(lab, worker, number, hold_start, hold_end, ctx(start - timedelta(minutes=59)),
                              requeued),
            lambda: lab.start_instantiation(1, ctx(hold_start), lab_yaml_uri="file:///lab.yaml"),
            lambda: failed_once and lab.instantiation_failed("boom", ctx(hold_start + timedelta(seconds=30)))
            and lab.start_instantiation(2, ctx(hold_start + timedelta(minutes=1))),
            lambda: lab.record_lab_imported(f"lab-{number}", ctx(hold_start + timedelta(minutes=2))),
            lambda: lab.record_lab_started(ctx(hold_start + timedelta(minutes=2))),
            lambda: lab.mark_ready({"session_id": f"s-{number}", "host": worker.ip},
                                   ctx(hold_start + timedelta(minutes=3))),
            lambda: lab.login(ctx(start + timedelta(minutes=2), f"user:student-{number}"), source="api"),
            lambda: lab.request_stop("timeslot_end", ctx(end)),
            lambda: lab.mark_stopped(ctx(end + timedelta(minutes=1))),
            lambda: lab.archive(ctx(end + timedelta(minutes=2))),
            lambda: (lab.terminate(None, ctx(end + timedelta(minutes=2))),
                     worker.release(lab.id, ctx(end + timedelta(minutes=2)), reason="archived")),
        ]
        for step in steps[:depth + 1]:
            step()
        store.save(lab, *fleet)
    if drain:
        fleet[0].start_draining("scale in", ctx(T0 + timedelta(days=1)))
        fleet[0].cancel_drain(ctx(T0 + timedelta(days=1, minutes=5)))
        store.save(fleet[0])


def _schedule(lab: LabletInstance, worker: Worker, number: int, hold_start: datetime, hold_end: datetime,
              c: CommandContext, requeued: bool) -> None:
    ports = worker.reserve(lab.id, REQ.resources, REQ.node_count, list(REQ.port_names), hold_start, hold_end, c,
                           license_affinity=REQ.license_affinity)
    lab.record_placement_decided(f"d-{number}", worker.id, {"policy": "p", "chosen_worker_id": worker.id}, c)
    lab.schedule(worker.id, ports, hold_start, hold_end, f"d-{number}", c)
    if requeued:  # back to the queue, then placed again on the same worker
        lab.unschedule("worker lost", c)
        lab.schedule(worker.id, ports, hold_start, hold_end, f"d-{number}-again", c)


def tables_of(models: Any, projections: list[Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for table in (t for p in projections for t in p.tables):
        items, cursor = [], None
        while True:
            page = models.query(table.name, limit=500, after=cursor)
            items.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        found[table.name] = {str(i): doc for i, doc in enumerate(items)}
    return found


def plainly(store: Any, projections: list[Any]) -> MemoryReadModelStore:
    """Every event to every projection, one transaction per event, no batch, no filter."""
    models = MemoryReadModelStore()
    models.ensure_tables([t for p in projections for t in p.tables])
    for stored in store.read_all(limit=1_000_000):
        for projection in projections:
            with models.transaction() as tx:
                projection.handle(stored, tx)
    return models


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=labs, drain=st.booleans(), batch_size=st.integers(1, 40), carry_limit=st.sampled_from([1, 5, 20_000]),
       kind=st.sampled_from(["memory", "sqlite"]))
def test_the_batched_filtered_and_rebuilt_read_models_equal_the_plain_ones(
        tmp_path_factory: Any, plan: list[tuple[int, bool, bool, bool]], drain: bool, batch_size: int,
        carry_limit: int, kind: str) -> None:
    tmp = tmp_path_factory.mktemp("batched")
    store = open_event_store("memory")
    play(store, plan, drain)
    projections = discover_projections()
    expected = tables_of(plainly(store, projections), projections)

    models = MemoryReadModelStore() if kind == "memory" else SqliteReadModelStore(tmp / "readmodels.sqlite3")
    try:
        ProjectionRunner(store, models, projections, batch_size=batch_size).catch_up()
        assert tables_of(models, projections) == expected  # followed, in batches
        rebuilding = ProjectionRunner(store, models, projections, batch_size=batch_size,
                                      replay_batch_size=batch_size)
        rebuilding.applier.carry_limit = carry_limit
        rebuilding.rebuild_all()
        assert tables_of(models, projections) == expected  # rebuilt in a shadow, carried between batches
    finally:
        models.close()
