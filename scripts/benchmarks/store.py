"""Event store benchmark: our store against the plain driver, follow latency, rebuild.

    scripts/bench store [--events N] [--quick] [--postgres URL] [--latency-samples M]

For each backend (SQLite always; PostgreSQL when a URL is given):
- append N events through ``EventStore.save`` (one event per save, one transaction each)
  and the same number of rows through the plain driver with the same durability
  (SQLite: WAL + synchronous=FULL, one transaction per insert; PostgreSQL: psycopg, one
  transaction per insert) — events/s for both and the ratio. The two alternate in chunks
  of 500 so both see the same disk (fsync latency varies a lot on a shared machine);
- projection follow latency: time from ``save()`` returning to the projection's
  transaction committing (``ProjectionRunner.wait_for_position``), p50/p95;
- rebuild: ``ProjectionRunner.rebuild`` of one projection over the whole log, events/s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from adapters.eventstore import EventStore, open_event_store
from adapters.eventstore.factory import drop_schema
from adapters.eventstore.readmodel_postgres import PostgresReadModelStore
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from adapters.eventstore.settings import postgres_conninfo
from domain.base import LrmAggregate
from domain.context import CommandContext
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import ReadModelTx, Table
from projections.runner import ProjectionRunner

console = Console(width=110)
EVENTS_PER_STREAM = 10


class BenchCounter(LrmAggregate):
    class Opened(LrmAggregate.Created):
        label: str

    class Bumped(LrmAggregate.Event):
        by: int
        note: str

        def apply(self, aggregate: BenchCounter) -> None:
            aggregate.total += self.by

    def __init__(self, label: str) -> None:
        self.label = label
        self.total = 0


class BenchSummary(Projection):
    """A typical read model: read-modify-write of one document per event."""

    name = "bench_summary"
    tables = (Table("bench_counters", {"label": str, "total": int}),)

    def handle(self, event: StoredEvent, tx: ReadModelTx) -> None:
        if event.event_name == "Opened":
            tx.put("bench_counters", event.stream_id,
                   {"label": event.event.label, "total": 0, "events": 1})
            return
        doc = tx.get("bench_counters", event.stream_id) or {"label": "?", "total": 0, "events": 0}
        doc["total"] += event.event.by
        doc["events"] += 1
        tx.put("bench_counters", event.stream_id, doc)


def ctx() -> CommandContext:
    return CommandContext(at=datetime.now(timezone.utc), actor="bench")


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<28}"), BarColumn(),
                    TextColumn("{task.completed:>9,.0f}/{task.total:,.0f}"),
                    TimeRemainingColumn(), console=console, transient=True)


def event_stream(n: int) -> Iterator[BenchCounter]:
    """Yields an aggregate with exactly one new pending event, n times."""
    live: list[BenchCounter] = []
    c = ctx()
    for i in range(n):
        if i % EVENTS_PER_STREAM == 0:
            counter = BenchCounter._create_with(BenchCounter.Opened, c, label=f"c{i}")
            live.append(counter)
            yield counter
        else:
            counter = live[-1 - (i % min(len(live), 7))]  # interleave recent streams
            counter._record(BenchCounter.Bumped, c, by=1, note="x" * 40)
            yield counter


def append_both(store: EventStore, baseline: Callable[[tuple[str, int, str, bytes]], None],
                n: int, chunk: int = 500) -> tuple[float, float]:
    """Append n events through our store and n rows through the plain driver, alternating
    chunks so both see the same machine conditions (fsync latency varies with load)."""
    ours_events, baseline_rows_ = event_stream(n), baseline_rows(n)
    ours_time = baseline_time = 0.0
    with progress_bar() as bar:
        task = bar.add_task(f"{store.kind}: ours + plain driver", total=2 * n)
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            started = time.perf_counter()
            for _ in range(size):
                store.save(next(ours_events))
            ours_time += time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(size):
                baseline(next(baseline_rows_))
            baseline_time += time.perf_counter() - started
            bar.advance(task, 2 * size)
    return n / ours_time, n / baseline_time


def baseline_rows(n: int) -> Iterator[tuple[str, int, str, bytes]]:
    """The same shape of rows the library writes (JSON state of a similar size)."""
    streams: list[str] = []
    versions: dict[str, int] = {}
    for i in range(n):
        if i % EVENTS_PER_STREAM == 0:
            stream = f"BenchCounter-{uuid.uuid4()}"
            streams.append(stream)
            versions[stream] = 0
            state = {"label": f"c{i}", "timestamp": datetime.now(timezone.utc).isoformat(),
                     "metadata": {"actor": "bench", "causation_id": str(uuid.uuid4())}}
            topic = "bench:Opened"
        else:
            stream = streams[-1 - (i % min(len(streams), 7))]
            versions[stream] += 1
            state = {"by": 1, "note": "x" * 40, "timestamp": datetime.now(timezone.utc).isoformat(),
                     "metadata": {"actor": "bench", "causation_id": str(uuid.uuid4())}}
            topic = "bench:Bumped"
        yield stream, versions[stream], topic, json.dumps(state).encode()


@contextmanager
def sqlite_baseline(path: Path) -> Iterator[Callable[[tuple[str, int, str, bytes]], None]]:
    """Plain sqlite3: WAL, synchronous=FULL, one transaction per insert."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (stream_id TEXT, version INTEGER, topic TEXT, state BLOB, "
                 "PRIMARY KEY (stream_id, version))")

    def insert(row: tuple[str, int, str, bytes]) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?)", row)
        conn.execute("COMMIT")

    try:
        yield insert
    finally:
        conn.close()


@contextmanager
def postgres_baseline(url: str, schema: str) -> Iterator[Callable[[tuple[str, int, str, bytes]], None]]:
    """Plain psycopg: one transaction per insert."""
    with psycopg.connect(postgres_conninfo(url)) as conn:
        conn.execute(f'CREATE TABLE "{schema}".baseline (stream_id text, version bigint, '
                     "topic text, state bytea, id bigserial, PRIMARY KEY (stream_id, version))")
        conn.commit()
        statement = (f'INSERT INTO "{schema}".baseline (stream_id, version, topic, state) '
                     "VALUES (%s, %s, %s, %s)")

        def insert(row: tuple[str, int, str, bytes]) -> None:
            with conn.transaction():
                conn.execute(statement, row)

        yield insert


def follow_latency(store: EventStore, models: Any, samples: int) -> tuple[float, float]:
    """ms from save() returning to the projection committing that position."""
    runner = ProjectionRunner(store, models, [BenchSummary()])
    runner.start()
    latencies: list[float] = []
    try:
        if not runner.wait_for_position(store.max_position(), timeout=600):
            raise RuntimeError("projection did not catch up")
        with progress_bar() as bar:
            task = bar.add_task(f"{store.kind}: follow latency", total=samples)
            for aggregate in event_stream(samples):
                position = store.save(aggregate)
                saved = time.perf_counter()
                if not runner.wait_for_position(position, timeout=10):
                    raise RuntimeError(f"position {position} not projected within 10 s")
                latencies.append((time.perf_counter() - saved) * 1000)
                bar.advance(task)
                time.sleep(0.002)  # let the follower go idle, as between real commands
    finally:
        runner.stop()
    quantiles = statistics.quantiles(latencies, n=100)
    return quantiles[49], quantiles[94]


def rebuild_rate(store: EventStore, models: Any) -> float:
    runner = ProjectionRunner(store, models, [BenchSummary()], batch_size=1000)
    runner.prepare()
    total = store.max_position()
    with progress_bar() as bar:
        task = bar.add_task(f"{store.kind}: rebuild", total=total)
        started = time.perf_counter()
        count = runner.rebuild("bench_summary",
                               progress=lambda done, _total: bar.update(task, completed=done))
        elapsed = time.perf_counter() - started
    return count / elapsed


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        yield schema
    finally:
        drop_schema(url, schema)


def run_backend(kind: str, n: int, samples: int, workdir: Path, url: str | None) -> dict[str, float]:
    result: dict[str, float] = {}
    if kind == "sqlite":
        store = open_event_store("sqlite", sqlite_path=workdir / "events.sqlite3")
        models: Any = SqliteReadModelStore(workdir / "readmodels.sqlite3")
        try:
            with sqlite_baseline(workdir / "baseline.sqlite3") as baseline:
                result["ours"], result["baseline"] = append_both(store, baseline, n)
            result["p50"], result["p95"] = follow_latency(store, models, samples)
            result["rebuild"] = rebuild_rate(store, models)
        finally:
            models.close()
            store.close()
        return result
    assert url is not None
    with postgres_schema(url) as schema:
        store = open_event_store("postgres", postgres_url=url, schema=schema)
        models = PostgresReadModelStore(url, schema)
        try:
            with postgres_baseline(url, schema) as baseline:
                result["ours"], result["baseline"] = append_both(store, baseline, n)
            result["p50"], result["p95"] = follow_latency(store, models, samples)
            result["rebuild"] = rebuild_rate(store, models)
        finally:
            models.close()
            store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench store", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events to append")
    parser.add_argument("--quick", action="store_true", help="5 000 events, 300 latency samples")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--latency-samples", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print results as JSON too")
    args = parser.parse_args()
    n = 5_000 if args.quick else args.events
    samples = 300 if args.quick else args.latency_samples

    kinds = ["sqlite"] + (["postgres"] if args.postgres else [])
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lrm-bench-") as tmp:
        for kind in kinds:
            results[kind] = run_backend(kind, n, samples, Path(tmp), args.postgres)

    table = RichTable(title=f"Event store, {n:,} events (one event per save)")
    for column in ("backend", "ours ev/s", "plain driver ev/s", "ratio",
                   "follow p50 ms", "follow p95 ms", "rebuild ev/s"):
        table.add_column(column, justify="right")
    for kind, r in results.items():
        table.add_row(kind, f"{r['ours']:,.0f}", f"{r['baseline']:,.0f}",
                      f"{r['ours'] / r['baseline']:.2f}", f"{r['p50']:.1f}", f"{r['p95']:.1f}",
                      f"{r['rebuild']:,.0f}")
    console.print(table)
    if args.json:
        print(json.dumps({"events": n, "results": results}, indent=2))


if __name__ == "__main__":
    main()
