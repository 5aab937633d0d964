"""Rebuild of every read model from N events (SPEC §10: 1 000 000 events in < 60 s).

    scripts/bench projections [--events N] [--quick] [--tiny] [--processes N] [--postgres URL] [--each] [--json]

1. Generates a realistic log in a SQLite event store with the domain aggregates: a fleet
   of workers, then labs through their whole life (requested, scheduled, instantiating,
   imported, started, ready, logged in, stop requested, stopped, archived, terminated;
   the worker's CapacityReserved/CapacityReleased) — 13 events per lab, saved in batches.
2. Rebuilds all read models (``api.container.discover_projections()``, SQLite read-model
   store) with ``ProjectionRunner.rebuild_all`` (shadow copy, then the switch-over): events/s,
   in one process and, with ``--processes N`` (default 2), in N processes side by side.
3. Baseline in the same run: the same rebuild with one projection that does nothing
   (reading and decoding the log, one checkpoint per batch): the floor any read model pays.
4. ``--postgres URL``: the same log copied to a PostgreSQL event store (throw-away schema),
   rebuilt into PostgreSQL read models: baseline and all read models.

Wall time is what counts; CPU seconds of this process are printed beside it because the
machine is shared (other work stretches wall time, CPU time much less).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.eventstore import open_event_store
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from api.container import discover_projections
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.timeslot import Timeslot
from domain.worker import Worker
from domain.worker_template import parse_templates_yaml
from projections.events import StoredEvent
from projections.parallel import rebuild_in_processes
from projections.projection import Projection
from projections.readmodel import ReadModelTx
from projections.runner import ProjectionRunner

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
EVENTS_PER_LAB = 13
REQ = InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=2, port_names=("serial_1", "vnc_1"),
                           license_affinity=("PERSONAL", "ENTERPRISE"), max_duration_minutes=120)
console = Console(width=110)


class DecodeOnly(Projection):
    """The baseline: sees every event, writes nothing."""

    name = "bench_decode_only"

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        return None


def ctx(at: datetime, actor: str) -> CommandContext:
    return CommandContext(at=at, actor=actor)


def generate(store: Any, events: int, workers: int, progress: Any) -> int:
    spec = next(t for t in parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())
                if t.name == "personal-standard")
    fleet = []
    for n in range(workers):
        worker = Worker.request(spec, ctx(T0, "system:autoscaler"))
        worker.start_provisioning(f"i-{n:017x}", ctx(T0, "system:worker-controller"))
        worker.mark_ready(f"10.0.{n // 250}.{n % 250}", ctx(T0 + timedelta(minutes=20), "system:worker-controller"))
        fleet.append(worker)
    store.save(*fleet)
    labs = max(1, (events - 4 * workers) // EVENTS_PER_LAB)
    batch: list[Any] = []
    for number in range(labs):
        worker = fleet[number % workers]
        slot = number // workers  # the worker's n-th lab: one after another, 70 minutes apart
        start = T0 + timedelta(hours=1, minutes=70 * slot)
        end = start + timedelta(minutes=60)
        instance = LabletInstance.request_with(
            definition_name="ccna-basic-routing", definition_version="1.0.0", requirements=REQ,
            grading_enabled=False, owner_id=f"student-{number}", timeslot=Timeslot(start, end),
            ctx=ctx(start - timedelta(hours=1), "service:exam"))
        hold_start, hold_end = start - timedelta(minutes=15), end + timedelta(minutes=5)
        c = ctx(start - timedelta(minutes=59), "system:scheduler")
        ports = worker.reserve(instance.id, REQ.resources, REQ.node_count, list(REQ.port_names), hold_start, hold_end,
                               c, license_affinity=REQ.license_affinity)
        instance.schedule(worker.id, ports, hold_start, hold_end, f"decision-{number}", c)
        instance.start_instantiation(1, ctx(hold_start, "system:scheduler"))
        instance.record_lab_imported(f"lab-{number}", ctx(hold_start, "system:instance-controller"))
        instance.record_lab_started(ctx(hold_start, "system:instance-controller"))
        instance.mark_ready({"host": worker.ip, "login_url": "https://sim/"},
                            ctx(hold_start + timedelta(minutes=3), "system:instance-controller"))
        instance.login(ctx(start + timedelta(minutes=2), f"user:student-{number}"), source="api")
        instance.request_stop("timeslot_end", ctx(end, "system:instance-controller"))
        instance.mark_stopped(ctx(end + timedelta(minutes=1), "system:instance-controller"))
        instance.archive(ctx(end + timedelta(minutes=2), "system:instance-controller"))
        instance.terminate(None, ctx(end + timedelta(minutes=2), "system:instance-controller"))
        worker.release(instance.id, ctx(end + timedelta(minutes=2), "system:instance-controller"), reason="archived")
        batch.append(instance)
        if len(batch) >= 200 or number == labs - 1:
            store.save(*batch, *fleet)
            batch = []
            progress(number + 1, labs)
    return store.max_position()


def rebuild(store: Any, read_models: Any, projections: list[Projection], label: str) -> tuple[int, float, float]:
    runner = ProjectionRunner(store, read_models, projections)
    try:
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(label, total=None)
            began, cpu = time.perf_counter(), time.process_time()
            replayed = runner.rebuild_all(lambda done, total: bar.update(task, completed=done, total=max(total, 1)))
            return replayed, time.perf_counter() - began, time.process_time() - cpu
    finally:
        read_models.close()


def open_sqlite_stores(events_path: str, read_models_path: str) -> tuple[Any, Any, list[Projection]]:
    """For the rebuild processes (projections/parallel.py): picklable, opens its own stores."""
    return (open_event_store("sqlite", sqlite_path=events_path), SqliteReadModelStore(read_models_path),
            discover_projections())


def rebuild_parallel(events_path: Path, read_models_path: Path, processes: int) -> tuple[int, float]:
    projections = discover_projections()
    store, models = open_event_store("sqlite", sqlite_path=events_path), SqliteReadModelStore(read_models_path)
    try:
        ProjectionRunner(store, models, projections).prepare()
    finally:
        models.close()
        store.close()
    began = time.perf_counter()
    replayed = rebuild_in_processes(partial(open_sqlite_stores, str(events_path), str(read_models_path)),
                                    projections, processes)
    return replayed, time.perf_counter() - began


def copy_to_postgres(source: Any, url: str, schema: str) -> Any:
    """The generated log, event by event in the same order, into a PostgreSQL event store."""
    from adapters.eventstore.factory import create_schema

    create_schema(url, schema)
    target = open_event_store("postgres", postgres_url=url, schema=schema)
    recorder = source.app.recorder
    into = target.app.recorder
    after = 0
    while True:
        rows = recorder.select_notifications(start=after + 1, limit=5000, inclusive_of_start=True)
        if not rows:
            return target
        into.insert_events(rows)
        after = rows[-1].id


def measure_postgres(store: Any, url: str) -> dict[str, Any]:
    import uuid

    from adapters.eventstore.factory import drop_schema
    from adapters.eventstore.readmodel_postgres import PostgresReadModelStore

    schema = f"bench_rm_{uuid.uuid4().hex[:8]}"
    target = copy_to_postgres(store, url, schema)
    try:
        base_events, base_s, _ = rebuild(target, PostgresReadModelStore(url, schema), [DecodeOnly()], "pg baseline")
        all_events, all_s, _ = rebuild(target, PostgresReadModelStore(url, schema), discover_projections(),
                                       "pg all read models")
    finally:
        target.close()
        drop_schema(url, schema)
    return {"baseline_events_per_s": round(base_events / base_s), "baseline_seconds": round(base_s, 2),
            "rebuild_events_per_s": round(all_events / all_s), "rebuild_seconds": round(all_s, 2),
            "ratio_to_baseline": round(all_s / base_s, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="100 000 events")
    parser.add_argument("--tiny", action="store_true", help="3 000 events (CI smoke)")
    parser.add_argument("--processes", type=int, default=2, help="also rebuild in N processes (1: skip)")
    parser.add_argument("--postgres", default="", help="also rebuild on PostgreSQL (events and read models)")
    parser.add_argument("--each", action="store_true", help="also rebuild each read model alone (where the time goes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 100_000)
    if args.tiny:  # the CI smoke: no process pool to start
        args.events, args.workers, args.processes = min(args.events, 3_000), 20, 1
    with tempfile.TemporaryDirectory(prefix="lrm-bench-projections-") as tmp:
        events_path = Path(tmp) / "events.sqlite3"
        store = open_event_store("sqlite", sqlite_path=events_path)
        try:
            began = time.perf_counter()
            with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("labs", total=None)
                head = generate(store, args.events, args.workers,
                                lambda done, total: bar.update(task, completed=done, total=total))
            generated = time.perf_counter() - began
            projections = discover_projections()
            base_events, base_seconds, base_cpu = rebuild(
                store, SqliteReadModelStore(Path(tmp) / "baseline.sqlite3"), [DecodeOnly()], "baseline")
            all_events, all_seconds, all_cpu = rebuild(
                store, SqliteReadModelStore(Path(tmp) / "readmodels.sqlite3"), projections, "all read models")
            parallel: dict[str, Any] = {}
            if args.processes > 1:
                _, seconds = rebuild_parallel(events_path, Path(tmp) / "parallel.sqlite3", args.processes)
                parallel = {"processes": args.processes, "rebuild_seconds": round(seconds, 2),
                            "rebuild_events_per_s": round(all_events / seconds),
                            "ratio_to_baseline": round(seconds / base_seconds, 2),
                            "speedup_vs_one_process": round(all_seconds / seconds, 2)}
            each: dict[str, float] = {}
            if args.each:
                for projection in projections:
                    _, seconds, _ = rebuild(store, SqliteReadModelStore(Path(tmp) / f"{projection.name}.sqlite3"),
                                            [projection], projection.name)
                    each[projection.name] = round(seconds - base_seconds, 2)
            postgres = measure_postgres(store, args.postgres) if args.postgres else {}
        finally:
            store.close()
    result = {
        "events": head, "generated_seconds": round(generated, 2),
        "projections": [p.name for p in projections],
        "baseline_events_per_s": round(base_events / base_seconds), "baseline_seconds": round(base_seconds, 2),
        "baseline_cpu_seconds": round(base_cpu, 2),
        "rebuild_events_per_s": round(all_events / all_seconds), "rebuild_seconds": round(all_seconds, 2),
        "rebuild_cpu_seconds": round(all_cpu, 2),
        "ratio_to_baseline": round(all_seconds / base_seconds, 2),
        "baseline_to_rebuild": round(base_seconds / all_seconds, 2),
        "projected_seconds_for_1M": round(1_000_000 / (all_events / all_seconds), 1),
        "parallel": parallel,
        "postgres": postgres,
        "seconds_beyond_baseline_each": each,
    }
    console.print(f"log: {head:,} events ({args.workers} workers, {EVENTS_PER_LAB} events per lab), "
                  f"generated in {generated:.1f} s")
    console.print(f"baseline (decode only): {result['baseline_events_per_s']:,} events/s ({base_seconds:.1f} s, "
                  f"{base_cpu:.1f} s CPU)")
    console.print(f"all {len(projections)} read models, one process: {result['rebuild_events_per_s']:,} events/s "
                  f"({all_seconds:.1f} s, {all_cpu:.1f} s CPU), {result['baseline_to_rebuild']}x the baseline's "
                  f"speed (target >= 0.5); 1 000 000 events would take ~{result['projected_seconds_for_1M']} s "
                  "(target < 60 s)")
    if parallel:
        console.print(f"all read models, {parallel['processes']} processes: {parallel['rebuild_events_per_s']:,} "
                      f"events/s ({parallel['rebuild_seconds']:.1f} s), {parallel['speedup_vs_one_process']}x "
                      "one process")
    if postgres:
        console.print(f"PostgreSQL: baseline {postgres['baseline_events_per_s']:,} events/s, all read models "
                      f"{postgres['rebuild_events_per_s']:,} events/s ({postgres['rebuild_seconds']:.1f} s), "
                      f"{postgres['ratio_to_baseline']}x the baseline's time")
    for name, seconds in sorted(each.items(), key=lambda kv: -kv[1]):
        console.print(f"  {name:<22} alone: {seconds:6.2f} s beyond the baseline")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
