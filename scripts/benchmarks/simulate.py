"""The simulator against the SPEC §10 targets.

    scripts/bench simulate [--quick] [--tiny] [--json] [--store memory|sqlite:PATH]

- **speed**: ``workloads/day-10k.yaml`` (10 000 bookings, 100+ workers) under the default
  policy: wall and CPU seconds (target: a simulated day in < 60 s wall), events written,
  simulated hours per wall second. Baseline in the same run: folding the same log into the
  KPIs alone (read + decode + ``KpiCollector``), i.e. what reading the result costs.
- **fleet cost**: ``exam-wave`` and ``office-hours`` under ``default``, ``reactive`` and
  ``static`` and the default with ``stop_between_reservations`` (the cost-saving variant):
  on-time starts (target ≥ 99.9 %), worker-hours and their ratio to the lower bound
  (target ≤ 1.15); the default should beat ``reactive`` on on-time starts and ``static`` on cost.

``--quick`` scales the generated bookings (day-10k to 5 %, the fleet-cost workloads to
25 %); ``--tiny`` to a handful (CI smoke). Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from api.simulate import open_store, quiet_processors, read_workload, run_simulation
from processors.simulation import KpiCollector, SimulationSettings

ROOT = Path(__file__).resolve().parents[2]
console = Console(width=130)
VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("default", "default", {}),
    ("default+stop-between", "default", {"stop_between_reservations": True}),
    ("reactive", "reactive", {}),
    ("static", "static", {}),
]


def speed(scale: float, store_url: str | None) -> dict[str, Any]:
    workload = read_workload(ROOT / "workloads" / "day-10k.yaml", scale=scale)
    store = open_store(store_url)
    try:
        from api.simulate import build_simulation

        simulation = build_simulation(workload, store=store)
        began, cpu = time.perf_counter(), time.process_time()
        with quiet_processors():
            result = simulation.run()
        wall, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
        began = time.perf_counter()
        collector = KpiCollector()
        after = 0
        while batch := store.read_all(after=after, limit=5000):
            collector.observe_all(batch)
            after = batch[-1].position or after
        baseline = time.perf_counter() - began
    finally:
        store.close()
    hours = (workload.end - workload.start).total_seconds() / 3600
    k = result.kpis
    return {"workload": workload.name, "bookings": len(workload.bookings), "workers_used": k["workers_used"],
            "events": k["events"], "steps": result.steps, "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu_seconds, 2), "events_per_s": round(k["events"] / wall),
            "sim_hours_per_wall_s": round(hours / wall, 2), "baseline_fold_seconds": round(baseline, 2),
            "ratio_to_baseline": round(wall / baseline, 1) if baseline else None,
            "on_time_ratio": k["on_time_ratio"], "ratio_to_lower_bound": k["ratio_to_lower_bound"]}


def fleet_cost(name: str, scale: float) -> list[dict[str, Any]]:
    workload = read_workload(ROOT / "workloads" / f"{name}.yaml", scale=scale)
    rows = []
    for label, policy, knobs in VARIANTS:
        result = run_simulation(workload, policy=policy, settings=SimulationSettings(scaling=knobs))
        k = result.kpis
        rows.append({"workload": name, "bookings": len(workload.bookings), "variant": label,
                     "on_time_ratio": k["on_time_ratio"], "wait_p95": k["wait_minutes"]["p95"],
                     "worker_hours": k["worker_hours"], "lower_bound_hours": k["lower_bound_hours"],
                     "ratio_to_lower_bound": k["ratio_to_lower_bound"], "cost": k["cost"],
                     "idle_share": k["idle_share"], "wall_seconds": round(result.wall_seconds, 1),
                     "cpu_seconds": round(result.cpu_seconds, 1)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--store", default=None, help="memory (default), sqlite:PATH")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    day_scale, cost_scale = (0.01, 0.05) if args.tiny else (0.05, 0.25) if args.quick else (1.0, 1.0)
    out: dict[str, Any] = {}
    if not args.skip_speed:
        row = speed(day_scale, args.store)
        out["speed"] = row
        console.print(f"[b]speed[/b] {row['workload']} x{day_scale}: {row['bookings']:,} bookings, "
                      f"{row['workers_used']} workers, {row['events']:,} events, {row['steps']} steps: "
                      f"{row['wall_seconds']} s wall ({row['cpu_seconds']} s CPU; target < 60 s for 10 000), "
                      f"{row['sim_hours_per_wall_s']} simulated h per s; baseline fold of the log "
                      f"{row['baseline_fold_seconds']} s (x{row['ratio_to_baseline']}); on time "
                      f"{row['on_time_ratio']}, ratio to LB {row['ratio_to_lower_bound']}")
    if not args.skip_cost:
        rows = fleet_cost("exam-wave", cost_scale) + fleet_cost("office-hours", cost_scale)
        out["fleet_cost"] = rows
        table = Table(title=f"fleet cost (bookings x{cost_scale}; targets: on time ≥ 99.9 %, ratio ≤ 1.15)")
        for column in ("workload", "variant", "on time", "wait p95 min", "worker-h", "lower bound h",
                       "ratio", "cost", "idle", "wall s (CPU s)"):
            table.add_column(column)
        for r in rows:
            on_time = "—" if r["on_time_ratio"] is None else f"{r['on_time_ratio'] * 100:.2f} %"
            table.add_row(f"{r['workload']} ({r['bookings']})", r["variant"], on_time, f"{r['wait_p95'] or 0:.1f}",
                          f"{r['worker_hours']:.1f}", f"{r['lower_bound_hours']:.1f}",
                          f"{r['ratio_to_lower_bound'] or 0:.3f}", f"{r['cost']:.0f}", f"{r['idle_share'] * 100:.0f} %",
                          f"{r['wall_seconds']} ({r['cpu_seconds']})")
        console.print(table)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
