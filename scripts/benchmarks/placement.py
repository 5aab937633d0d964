"""Placement decision throughput: the plugin pipeline against the naive baseline.

Run: ``.venv/bin/python -m scripts.benchmarks.placement [--workers 1000 --requests 10000]``

A synthetic fleet (mixed licenses, states, capacities and existing bookings over a
day) takes a stream of bookings placed one by one: each decision is timed, and a
placed booking is added to the chosen worker's ledger (as the scheduler would record
it), so the fleet fills up as the run goes. Timed per decision:

- *pipeline*: ``default_pipeline().decide(request, candidates)`` over a plain list;
- *indexed*: the same over a ``CandidateIndex`` (license groups rejected at once);
- *naive*: ``naive_decide`` (every check on every worker, per-minute grid scan) on a
  sample of the same requests at the same fleet state, with agreement checked.

Only the decision is timed here (no event store); ``recorded`` adds applying the
placement to the ledger (``allocate_ports`` + ``add``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from domain.ledger import Reservation, ReservationLedger
from domain.placement import (
    CandidateIndex,
    PlacementDecision,
    PlacementRequest,
    WorkerCandidate,
    default_pipeline,
    naive_decide,
)
from domain.resources import Resources

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
DAY_MINUTES = 16 * 60
LEAD = timedelta(minutes=15)
TEARDOWN = timedelta(minutes=30)

# (name, license, capacity, max_nodes, nested_virt, ami, share of the fleet)
TEMPLATES = [
    ("personal-m", "PERSONAL", Resources(16, 64, 500), 20, True, ("CML-2.9.1", "2.9.1"), 0.45),
    ("enterprise-l", "ENTERPRISE", Resources(48, 192, 1000), 120, True, ("CML-2.9.1", "2.9.1"), 0.30),
    ("enterprise-old", "ENTERPRISE", Resources(32, 128, 1000), 80, False, ("CML-2.8.0", "2.8.0"), 0.10),
    ("evaluation-s", "EVALUATION", Resources(8, 32, 200), 5, False, ("CML-2.9.1", "2.9.1"), 0.15),
]
STATES = [("RUNNING", 0.80), ("PROVISIONING", 0.05), ("STOPPED", 0.05), ("DRAINING", 0.05), ("TERMINATED", 0.05)]
# (cpu, memory, storage, nodes, ports, license affinity, nested_virt, min version)
LABLETS = [
    (2, 8, 20, 5, 2, frozenset({"PERSONAL", "ENTERPRISE"}), False, None),
    (4, 16, 40, 10, 3, frozenset({"PERSONAL", "ENTERPRISE"}), True, "2.9"),
    (8, 32, 80, 30, 4, frozenset({"ENTERPRISE"}), True, "2.9"),
    (1, 4, 10, 3, 1, frozenset({"EVALUATION"}), False, None),
]


def _pick(rng: random.Random, weighted: list) -> tuple:
    return rng.choices(weighted, weights=[item[-1] for item in weighted])[0]


def build_fleet(workers: int, rng: random.Random) -> list[WorkerCandidate]:
    fleet = []
    for n in range(workers):
        name, license_type, capacity, max_nodes, nested, (ami, version), _ = _pick(rng, TEMPLATES)
        state, _ = _pick(rng, STATES)
        ready_at = None
        if state in ("PROVISIONING", "STOPPED"):
            ready_at = T0 + timedelta(minutes=rng.choice((5, 20, 60, 240)))
        ledger = ReservationLedger(capacity, max_nodes, (2000, 2099))
        for k in range(rng.randint(0, 4)):
            start = T0 + timedelta(minutes=15 * rng.randint(0, DAY_MINUTES // 15))
            end = start + timedelta(minutes=rng.choice((60, 90, 120, 180)))
            share = Resources(capacity.cpu_cores / 4, capacity.memory_gb / 4, capacity.storage_gb / 8)
            if not ledger.check(share, max_nodes // 4, 2, start, end):
                ports = ledger.allocate_ports(["serial_1", "vnc_1"], start, end)
                ledger.add(Reservation(f"seed-{n}-{k}", share, max_nodes // 4, ports, start, end))
        fleet.append(
            WorkerCandidate(f"worker-{n:05d}", state, name, license_type, max_nodes, nested, ami, version, ready_at, ledger)
        )
    return fleet


def build_requests(count: int, rng: random.Random) -> list[PlacementRequest]:
    made = []
    for n in range(count):
        cpu, memory, storage, nodes, ports, affinity, nested, min_version = rng.choices(LABLETS, weights=(5, 3, 1, 1))[0]
        asap = rng.random() < 0.2
        timeslot = T0 + timedelta(minutes=15 * rng.randint(2, DAY_MINUTES // 15))
        duration = timedelta(minutes=rng.choice((60, 90, 120, 180, 240)))
        hold_start = T0 if asap else timeslot - LEAD
        made.append(
            PlacementRequest(
                instance_id=f"instance-{n:06d}",
                requirements=Resources(cpu, memory, storage),
                node_count=nodes,
                license_affinity=affinity,
                nested_virt=nested,
                ami_name_pattern="CML-2.*",
                ami_min_version=min_version,
                port_names=tuple(f"port_{k}" for k in range(ports)),
                hold_start=hold_start,
                hold_end=(T0 if asap else timeslot) + duration + TEARDOWN,
                timeslot_start=None if asap else timeslot,
                instantiation_lead=LEAD,
            )
        )
    return made


def apply(decision: PlacementDecision, request: PlacementRequest, index: CandidateIndex) -> None:
    if decision.chosen_worker_id is None:
        return
    ledger = index.get(decision.chosen_worker_id).ledger
    ports = ledger.allocate_ports(list(request.port_names), request.hold_start, request.hold_end)
    ledger.add(
        Reservation(request.instance_id, request.requirements, request.node_count, ports, request.hold_start, request.hold_end)
    )
    index.ledger_changed(decision.chosen_worker_id)


CLOCK = time.perf_counter


def timed(func: Callable[[], PlacementDecision]) -> tuple[PlacementDecision, float]:
    started = CLOCK()
    result = func()
    return result, CLOCK() - started


def summary(label: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{label:<10} (not run)"
    ordered = sorted(seconds)
    p50 = ordered[len(ordered) // 2] * 1e3
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
    rate = len(seconds) / sum(seconds)
    return f"{label:<10} {len(seconds):>8} {rate:>12.1f} {p50:>9.3f} {p99:>9.3f} {statistics.fmean(seconds) * 1e3:>9.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--naive-every", type=int, default=200, help="time the naive baseline on every n-th request")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--cpu-time", action="store_true", help="time with this process's CPU clock (steadier on a busy machine)"
    )
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time

    rng = random.Random(args.seed)
    fleet = build_fleet(args.workers, rng)
    requests = build_requests(args.requests, rng)
    pipeline = default_pipeline()
    index = CandidateIndex(fleet)

    plain: list[float] = []
    indexed: list[float] = []
    naive: list[float] = []
    recorded: list[float] = []
    placed = disagreements = 0
    started = time.perf_counter()
    for n, request in enumerate(requests):
        decision, seconds = timed(lambda: pipeline.decide(request, fleet))
        plain.append(seconds)
        via_index, seconds = timed(lambda: pipeline.decide(request, index))
        indexed.append(seconds)
        if via_index != decision:
            disagreements += 1
        if n % args.naive_every == 0:
            baseline, seconds = timed(lambda: naive_decide(request, fleet))
            naive.append(seconds)
            if (baseline.chosen_worker_id, baseline.ranking) != (decision.chosen_worker_id, decision.ranking):
                disagreements += 1
        _, seconds = timed(lambda: apply(decision, request, index))
        recorded.append(indexed[-1] + seconds)
        placed += decision.placed
    wall = time.perf_counter() - started

    print(f"workers {args.workers}, requests {args.requests}, placed {placed}, unplaceable {args.requests - placed}")
    clock = "process CPU time" if args.cpu_time else "wall clock"
    print(f"disagreements (index vs list, naive vs pipeline): {disagreements}; wall {wall:.1f} s; timed by {clock}")
    print(f"{'':<10} {'decisions':>8} {'decisions/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for label, seconds in (("pipeline", plain), ("indexed", indexed), ("recorded", recorded), ("naive", naive)):
        print(summary(label, seconds))
    if naive:
        sampled = plain[:: args.naive_every][: len(naive)]
        print(f"speed-up pipeline vs naive on the same requests: {sum(naive) / sum(sampled):.0f}x")


if __name__ == "__main__":
    main()
