"""Scheduler end-to-end: recorded placements per second through the event store.

Run: ``scripts/bench scheduler [--quick] [--postgres URL]``

A fleet of workers (mixed templates, mostly RUNNING) and a day of bookings are saved to a
fresh store; then one ``Scheduler`` places the whole queue: per placement it folds the
log, decides with the default policy, reserves on the worker's stream (expected
version) and saves ``PlacementDecided`` + ``InstanceScheduled`` on the instance's
stream. Reported: recorded placements/s (wall time of the whole run, decision events
included), p50/p99 decision latency, and the naive baseline (``naive_decide``) timed on
a sample of the same requests at the same fleet state (its time is excluded from the
scheduler's wall time), with the ratio and the agreement of the two.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from adapters.clock import VirtualClock
from adapters.eventstore import open_event_store
from adapters.eventstore.factory import drop_schema
from domain.context import CommandContext
from domain.instance import InstanceRequirements, InstanceState, LabletInstance
from domain.placement import default_pipeline, naive_decide
from domain.timeslot import Timeslot
from domain.worker import Worker
from domain.worker_template import WorkerTemplateSpec
from processors.scheduler import Scheduler, SchedulerSettings, fleet_candidates

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
DAY_MINUTES = 16 * 60

# (name, license, cpu, memory, storage, max_nodes, nested_virt, share)
TEMPLATES = [
    ("personal-m", "PERSONAL", 16, 64, 500, 20, True, 0.45),
    ("enterprise-l", "ENTERPRISE", 48, 192, 1000, 120, True, 0.35),
    ("evaluation-s", "EVALUATION", 8, 32, 200, 5, False, 0.20),
]
# (cpu, memory, storage, nodes, ports, license affinity, nested_virt)
LABLETS = [
    (2, 8, 20, 5, ("serial_1", "vnc_1"), ("PERSONAL", "ENTERPRISE"), False),
    (4, 16, 40, 10, ("serial_1", "serial_2", "vnc_1"), ("PERSONAL", "ENTERPRISE"), True),
    (8, 32, 80, 30, ("serial_1", "serial_2", "serial_3", "vnc_1"), ("ENTERPRISE",), True),
    (1, 4, 10, 3, ("serial_1",), ("EVALUATION",), False),
]


class SampledScheduler(Scheduler):
    """The scheduler, plus on every n-th decision the naive baseline and the policy over the
    whole fleet (no shortlist, no index), timed at the same fleet state; their time is kept
    apart so it can be taken out of the scheduler's wall time."""

    def __init__(self, *args: Any, every: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.every = every
        self.count = 0
        self.side_seconds = 0.0
        self.side_cpu = 0.0
        self.naive_ms: list[float] = []
        self.full_ms: list[float] = []
        self.sampled_ms: list[float] = []
        self.disagreements = 0

    def _decide(self, instance: Any, now: datetime, pending: list[list[str]]) -> Any:
        result = super()._decide(instance, now, pending)
        request, decision = result[0], result[1]
        self.count += 1
        if request is not None and decision is not None and self.every and self.count % self.every == 0:
            side_started = time.perf_counter()
            side_cpu = time.process_time()
            candidates = fleet_candidates(self.view)
            started = time.perf_counter()
            naive = naive_decide(request, candidates)
            self.naive_ms.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            default_pipeline().decide(request, candidates)
            self.full_ms.append(1000 * (time.perf_counter() - started))
            self.sampled_ms.append(1000 * self.decision_seconds[-1])
            if naive.chosen_worker_id != decision.chosen_worker_id:
                self.disagreements += 1
            self.side_seconds += time.perf_counter() - side_started
            self.side_cpu += time.process_time() - side_cpu
        return result


def build(store: Any, workers: int, requests: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    ctx = CommandContext(at=T0, actor="bench")
    specs = [
        (WorkerTemplateSpec.from_dict({
            "name": name, "instance_type": "m5zn.metal",
            "capacity": {"cpu_cores": cpu, "memory_gb": mem, "storage_gb": sto},
            "license_type": lic, "max_nodes": nodes, "ami_pattern": "CML-2.9.*", "ami_version": "2.9.1",
            "region": "us-east-1", "port_range": {"start": 2000, "end": 2999}, "hourly_cost": 4.0,
            "nested_virt": nested,
        }), share)
        for name, lic, cpu, mem, sto, nodes, nested, share in TEMPLATES
    ]
    worker_ids = []
    batch = []
    for n in range(workers):
        spec = rng.choices([s for s, _ in specs], weights=[w for _, w in specs])[0]
        worker = Worker.request(spec, ctx, expected_ready_at=T0)
        if rng.random() < 0.9:
            worker.start_provisioning(f"i-{n}", ctx, expected_ready_at=T0)
            worker.mark_ready(f"10.0.{n // 250}.{n % 250}", ctx)
        worker_ids.append(worker.id)
        batch.append(worker)
        if len(batch) == 200:
            store.save(*batch)
            batch = []
    instance_ids = []
    for _ in range(requests):
        cpu, mem, sto, nodes, ports, affinity, nested = rng.choice(LABLETS)
        start = T0 + timedelta(minutes=60 + rng.randrange(0, DAY_MINUTES - 120, 15))
        minutes = rng.choice((30, 60, 90, 120))
        instance = LabletInstance.request_with(
            definition_name="bench-lab", definition_version="1.0.0",
            requirements=InstanceRequirements(cpu, mem, sto, nodes, ports, affinity, nested),
            grading_enabled=False, owner_id=f"user-{rng.randrange(500)}",
            timeslot=Timeslot(start, start + timedelta(minutes=minutes)), ctx=ctx,
        )
        instance_ids.append(instance.id)
        batch.append(instance)
        if len(batch) == 500:
            store.save(*batch)
            batch = []
    if batch:
        store.save(*batch)
    return worker_ids, instance_ids


def run(kind: str, workers: int, requests: int, seed: int, naive_every: int, postgres_url: str = "") -> dict[str, Any]:
    schema = ""
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "postgres":
            schema = f"bench_sched_{uuid.uuid4().hex[:8]}"
            store = open_event_store("postgres", postgres_url=postgres_url, schema=schema)
        else:
            store = open_event_store("sqlite", sqlite_path=Path(tmp) / "events.sqlite3")
        try:
            _, instance_ids = build(store, workers, requests, seed)
            scheduler = SampledScheduler(store, VirtualClock(T0), settings=SchedulerSettings(), every=naive_every)
            started = time.perf_counter()
            cpu_started = time.process_time()
            report = scheduler.run_until_idle(T0, max_passes=10)
            wall = time.perf_counter() - started - scheduler.side_seconds
            cpu = time.process_time() - cpu_started - scheduler.side_cpu
            states: dict[str, int] = {}
            for instance in scheduler.view.instances.values():
                states[instance.state.value] = states.get(instance.state.value, 0) + 1
            latencies = sorted(scheduler.decision_seconds)
            return {
                "backend": kind, "workers": workers, "requests": requests,
                "placed": report.placed, "queued": states.get(InstanceState.PENDING.value, 0),
                "conflicts": report.conflicts, "wall": wall,
                "placements_per_s": report.placed / wall if wall else 0.0,
                "cpu": cpu, "placements_per_cpu_s": report.placed / cpu if cpu else 0.0,
                "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
                "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
                "naive_samples": len(scheduler.naive_ms),
                "naive_mean_ms": statistics.fmean(scheduler.naive_ms) if scheduler.naive_ms else 0.0,
                "full_mean_ms": statistics.fmean(scheduler.full_ms) if scheduler.full_ms else 0.0,
                "sampled_mean_ms": statistics.fmean(scheduler.sampled_ms) if scheduler.sampled_ms else 0.0,
                "disagreements": scheduler.disagreements,
                "events": store.max_position(),
            }
        finally:
            store.close()
            if schema:
                drop_schema(postgres_url, schema)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 workers, 1 000 requests")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--requests", type=int)
    parser.add_argument("--postgres", default="", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--naive-every", type=int, default=0, help="time the naive baseline on every n-th request")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workers = args.workers or (100 if args.quick else 1000)
    requests = args.requests or (1000 if args.quick else 10000)
    naive_every = args.naive_every or max(1, requests // 20)
    rows = [run("sqlite", workers, requests, args.seed, naive_every)]
    if args.postgres:
        rows.append(run("postgres", workers, requests, args.seed, naive_every, args.postgres))
    print(f"workers {workers}, requests {requests} over a day")
    print(f"{'backend':9} {'placed':>7} {'queued':>7} {'conflicts':>9} {'wall s':>8} {'placements/s':>13} "
          f"{'cpu s':>7} {'per cpu s':>10} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'naive ms':>9} {'full ms':>8} {'naive/sched':>12} {'disagree':>8} "
          f"{'events':>8}")
    for r in rows:
        ratio = r["naive_mean_ms"] / r["sampled_mean_ms"] if r["sampled_mean_ms"] else 0.0
        print(f"{r['backend']:9} {r['placed']:7d} {r['queued']:7d} {r['conflicts']:9d} {r['wall']:8.2f} "
              f"{r['placements_per_s']:13.1f} {r['cpu']:7.2f} {r['placements_per_cpu_s']:10.1f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['naive_mean_ms']:9.1f} "
              f"{r['full_mean_ms']:8.2f} {ratio:11.1f}x {r['disagreements']:8d} {r['events']:8d}")
    print("placements/s: placed over the run's wall seconds; per cpu s: over its CPU (process) seconds "
          "(the sampled baselines' time taken out of both)")
    print(f"p50/p99: the scheduler's decisions (shortlist over the fleet); naive ms / full ms: naive_decide and "
          f"the policy over the whole fleet, on {rows[0]['naive_samples']} sampled requests at the same state")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
