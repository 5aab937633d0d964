"""Rebuild of every read model from N events (SPEC §10: 1 000 000 events in < 60 s).

    scripts/bench projections [--events N] [--quick] [--tiny] [--processes N] [--postgres URL] [--each]
                              [--students N] [--seed N] [--fresh] [--json]

1. The log (scripts/benchmarks/projections_log.py): a fleet of workers, then labs through
   their whole life (requested, scheduled, instantiating, imported, started, ready, logged
   in, stop requested, stopped, archived, terminated; the worker's CapacityReserved and
   CapacityReleased): 13 events per lab, one lab per student through the aggregates and
   the mapper, the student's other labs stamped copies of it. Cached under the temporary
   directory by (events, workers, students, seed); ``--fresh`` writes it again.
2. Rebuilds all read models (``api.container.discover_projections()``, SQLite read-model
   store) with ``ProjectionRunner.rebuild_all`` (shadow copy, then the switch-over): events/s,
   in one process and, with ``--processes N`` (default 2), in N processes side by side
   (projections/parallel.py).
3. Baseline in the same run: the same rebuild with one projection that does nothing
   (reading and decoding the log, one checkpoint per batch): the floor any read model pays.
4. ``--postgres URL``: the same log copied to a PostgreSQL event store (throw-away schema),
   rebuilt into PostgreSQL read models: baseline, all read models, and N processes.

CPU seconds are printed beside wall time because the machine is shared (other work
stretches wall time, CPU time much less); for N processes, the CPU of all of them.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.eventstore import open_event_store
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from api.container import discover_projections
from projections.events import StoredEvent
from projections.parallel import rebuild_in_processes
from projections.projection import Projection
from projections.readmodel import ReadModelTx
from projections.runner import ProjectionRunner
from scripts.benchmarks.projections_log import EVENTS_PER_LAB, cached_log

console = Console(width=110)


class DecodeOnly(Projection):
    """The baseline: sees every event, writes nothing."""

    name = "bench_decode_only"

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        return None


class Lines:
    """Progress of a long step: a bar on a terminal, else a line every ~10 % (logs, CI)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.began = time.perf_counter()
        self.shown = -1
        self.bar: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> Lines:
        if console.is_terminal:
            self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=console, transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task(self.label, total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=max(total, 1))
            return
        tenth = 10 * done // max(total, 1)
        if tenth > self.shown:
            self.shown = tenth
            elapsed = time.perf_counter() - self.began
            console.print(f"  {self.label}: {done:,}/{total:,} ({10 * tenth} %, {elapsed:.1f} s)")


def rebuild(store: Any, read_models: Any, projections: list[Projection], label: str) -> tuple[int, float, float]:
    runner = ProjectionRunner(store, read_models, projections)
    try:
        with Lines(label) as progress:
            began, cpu = time.perf_counter(), time.process_time()
            replayed = runner.rebuild_all(progress)
            return replayed, time.perf_counter() - began, time.process_time() - cpu
    finally:
        read_models.close()


def open_sqlite_stores(events_path: str, read_models_path: str) -> tuple[Any, Any, list[Projection]]:
    """For the rebuild processes (projections/parallel.py): picklable, opens its own stores."""
    return (open_event_store("sqlite", sqlite_path=events_path), SqliteReadModelStore(read_models_path),
            discover_projections())


def open_postgres_stores(url: str, schema: str) -> tuple[Any, Any, list[Projection]]:
    from adapters.eventstore.readmodel_postgres import PostgresReadModelStore

    return (open_event_store("postgres", postgres_url=url, schema=schema), PostgresReadModelStore(url, schema),
            discover_projections())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rebuild_parallel(open_stores: Any, processes: int, label: str, timings: dict[str, Any],
                     in_place: bool = False) -> tuple[int, float, float]:
    """All read models rebuilt in ``processes`` processes: (events, wall s, CPU s of all processes)."""
    store, models, projections = open_stores()
    try:
        ProjectionRunner(store, models, projections).prepare()
    finally:
        models.close()
        store.close()
    with Lines(label) as progress:
        began, cpu, child_cpu = time.perf_counter(), time.process_time(), children_cpu()
        replayed = rebuild_in_processes(open_stores, projections, processes, progress=progress, timings=timings,
                                        in_place=in_place)
        return (replayed, time.perf_counter() - began,
                time.process_time() - cpu + children_cpu() - child_cpu)


def copy_to_postgres(source: Any, url: str, schema: str, progress: Any) -> Any:
    """The generated log, event by event in the same order, into a PostgreSQL event store."""
    from adapters.eventstore.factory import create_schema

    create_schema(url, schema)
    target = open_event_store("postgres", postgres_url=url, schema=schema)
    recorder = source.app.recorder
    into = target.app.recorder
    after, head = 0, source.max_position()
    while True:
        rows = recorder.select_notifications(start=after + 1, limit=5000, inclusive_of_start=True)
        if not rows:
            return target
        into.insert_events(rows)
        after = rows[-1].id
        progress(after, head)


def row(events: int, seconds: float, cpu: float) -> dict[str, Any]:
    return {"events": events, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "events_per_s": round(events / seconds) if seconds else 0}


def measure(open_stores: Any, open_models: Any, processes: int, backend: str,
            in_place: bool = False) -> dict[str, Any]:
    """Baseline, all read models in one process, and in ``processes`` processes, on one backend.

    ``open_stores()`` gives (events, read models, projections) for the parallel rebuild;
    ``open_models(name)`` a fresh read-model store for the one-process runs. Each run gets an
    event store of its own: none starts with the events another one decoded (the store keeps
    the last ones decoded, adapters/eventstore/decoded_events.py)."""
    def one_run(name: str, chosen: list[Projection] | None, label: str) -> dict[str, Any]:
        events, models, projections = open_stores()
        models.close()
        try:
            return row(*rebuild(events, open_models(name), projections if chosen is None else chosen, label))
        finally:
            events.close()

    result = {"baseline": one_run("baseline", [DecodeOnly()], f"{backend} baseline"),
              "one_process": one_run("one", None, f"{backend} all, 1 process")}
    if processes > 1:
        timings: dict[str, Any] = {}
        result["processes"] = {"count": processes, **row(*rebuild_parallel(
            open_stores, processes, f"{backend} all, {processes} processes", timings, in_place)),
            **{k: round(v, 2) if isinstance(v, float) else v for k, v in timings.items()}}
    return result


def describe(backend: str, result: dict[str, Any]) -> None:
    base, one = result["baseline"], result["one_process"]
    console.print(f"{backend} baseline (decode only): {base['events_per_s']:,} events/s ({base['seconds']:.1f} s, "
                  f"{base['cpu_seconds']:.1f} s CPU)")
    console.print(f"{backend} all read models, 1 process: {one['events_per_s']:,} events/s ({one['seconds']:.1f} s, "
                  f"{one['cpu_seconds']:.1f} s CPU), {base['seconds'] / one['seconds']:.2f}x the baseline's speed "
                  "(target >= 0.5)")
    many = result.get("processes")
    if many:
        console.print(f"{backend} all read models, {many['count']} processes: {many['events_per_s']:,} events/s "
                      f"({many['seconds']:.1f} s, {many['cpu_seconds']:.1f} s CPU of all processes), "
                      f"{one['seconds'] / many['seconds']:.2f}x one process's wall time; {many['design']}, "
                      f"CPU s per group: {', '.join(f'{v:.1f}' for v in many['group_cpu_seconds'].values())}")
        if "copy_in_seconds" in many:
            console.print(f"  then in this process: copy-in {many['copy_in_seconds']:.1f} s "
                          f"({many['copy_in_cpu_seconds']:.1f} s CPU), catch-up {many['catch_up_seconds']:.1f} s, "
                          f"switch-over {many['switch_over_seconds']:.1f} s ({many['switch_over_cpu_seconds']:.1f} s CPU)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--students", type=int, default=1000, help="distinct lab owners (one key each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="generate the log again (not the cached one)")
    parser.add_argument("--quick", action="store_true", help="100 000 events")
    parser.add_argument("--tiny", action="store_true", help="3 000 events (CI smoke)")
    parser.add_argument("--processes", type=int, default=2, help="also rebuild in N processes (1: skip)")
    parser.add_argument("--in-place", action="store_true",
                        help="N processes write the shared SQLite file (the design before scratch files)")
    parser.add_argument("--postgres", default="", help="also rebuild on PostgreSQL (events and read models)")
    parser.add_argument("--skip-sqlite", action="store_true", help="with --postgres: only PostgreSQL")
    parser.add_argument("--each", action="store_true", help="also rebuild each read model alone (where the time goes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 100_000)
    if args.tiny:  # the CI smoke: no process pool to start
        args.events, args.workers, args.students, args.processes = min(args.events, 3_000), 20, 50, 1
    began, cpu = time.perf_counter(), time.process_time()
    with Lines("generating labs") as progress:
        events_path, generated_now = cached_log(args.events, args.workers, args.students, args.seed, progress,
                                                fresh=args.fresh)
    generated = {"path": str(events_path), "generated_now": generated_now,
                 "seconds": round(time.perf_counter() - began, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}
    store = open_event_store("sqlite", sqlite_path=events_path)
    head = int(store.max_position())
    result: dict[str, Any] = {"events": head, "log": generated, "projections": [p.name for p in discover_projections()]}
    with tempfile.TemporaryDirectory(prefix="lrm-bench-projections-") as tmp:
        try:
            if not args.skip_sqlite:
                result["sqlite"] = measure(
                    partial(open_sqlite_stores, str(events_path), str(Path(tmp) / "parallel.sqlite3")),
                    lambda name: SqliteReadModelStore(Path(tmp) / f"{name}.sqlite3"), args.processes, "sqlite",
                    args.in_place)
            if args.each:  # CPU seconds: the machine is shared
                base = result["sqlite"]["baseline"]["cpu_seconds"] if "sqlite" in result else 0.0
                result["cpu_seconds_beyond_baseline_each"] = {
                    p.name: round(rebuild(open_event_store("sqlite", sqlite_path=events_path),
                                          SqliteReadModelStore(Path(tmp) / f"{p.name}.sqlite3"), [p],
                                          p.name)[2] - base, 2) for p in discover_projections()}
            if args.postgres:
                result["postgres"] = measure_postgres(store, args.postgres, args.processes)
        finally:
            store.close()
    state = "generated now" if generated_now else "cached"
    console.print(f"log: {head:,} events ({args.workers} workers, {args.students} students, {EVENTS_PER_LAB} "
                  f"events per lab), {state}: {events_path} ({generated['seconds']:.1f} s, "
                  f"{generated['cpu_seconds']:.1f} s CPU)")
    for backend in ("sqlite", "postgres"):
        if backend in result:
            describe(backend, result[backend])
    for name, seconds in sorted(result.get("cpu_seconds_beyond_baseline_each", {}).items(), key=lambda kv: -kv[1]):
        console.print(f"  {name:<22} alone: {seconds:6.2f} CPU s beyond the baseline")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def measure_postgres(store: Any, url: str, processes: int) -> dict[str, Any]:
    """The log copied into a throw-away schema of ``url``, rebuilt into read models there."""
    import uuid

    from adapters.eventstore.factory import drop_schema
    from adapters.eventstore.readmodel_postgres import PostgresReadModelStore

    schema = f"bench_rm_{uuid.uuid4().hex[:8]}"
    with Lines("copying the log to PostgreSQL") as progress:
        copy_to_postgres(store, url, schema, progress).close()
    try:
        return measure(partial(open_postgres_stores, url, schema),
                       lambda name: PostgresReadModelStore(url, schema), processes, "postgres")
    finally:
        drop_schema(url, schema)


if __name__ == "__main__":
    sys.exit(main())
