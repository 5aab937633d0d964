"""CPU per booking as the day grows: ``workloads/day-10k.yaml`` at several scales.

    scripts/bench scaling [--scales 0.1 0.2 0.5 1] [--store memory|sqlite] [--profile DIR] [--json]

Each scale runs in a fresh process (no cache or import shared between runs) through the
same code as ``lablet simulate``: CPU and wall seconds, events written, clock steps,
autoscaler plans, and CPU(x)/CPU(first scale). Flat cost per booking means the CPU ratio
follows the bookings ratio (x1 / x0.1 = 10); the target is <= 12. ``view_mismatches`` is
how many of the autoscaler's periodic full checks found its incremental snapshot wrong
(must be 0). ``--profile DIR`` writes a cProfile file per scale. Numbers are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
console = Console(width=130)


def run_one(scale: float, store: str) -> dict[str, Any]:
    """One simulated day at ``scale`` in this process (called in a child process)."""
    from api.simulate import build_simulation, open_store, quiet_processors, read_workload

    workload = read_workload(ROOT / "workloads" / "day-10k.yaml", scale=scale)
    with tempfile.TemporaryDirectory() as tmp:
        opened = open_store(f"sqlite:{tmp}/events.db" if store == "sqlite" else None)
        try:
            simulation = build_simulation(workload, store=opened)
            began, cpu = time.perf_counter(), time.process_time()
            with quiet_processors():
                result = simulation.run()
            wall, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
        finally:
            opened.close()
    k = result.kpis
    autoscaler = simulation.autoscaler
    return {"scale": scale, "store": store, "bookings": len(workload.bookings), "events": k["events"],
            "steps": result.steps, "plans": getattr(autoscaler, "plans", None),
            "view_mismatches": getattr(autoscaler, "view_mismatches", None),
            "cpu_seconds": round(cpu_seconds, 2), "wall_seconds": round(wall, 2),
            "on_time_ratio": k["on_time_ratio"], "worker_hours": k["worker_hours"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.2, 0.5, 1.0])
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--profile", type=Path, default=None, help="write <DIR>/scaling-<scale>.prof per run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.store)))
        return 0
    rows: list[dict[str, Any]] = []
    for scale in args.scales:
        command = [sys.executable]
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            command += ["-m", "cProfile", "-o", str(args.profile / f"scaling-{scale:g}.prof")]
        command += ["-m", "scripts.benchmarks", "scaling", "--one", str(scale), "--store", args.store]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            console.print(f"[red]x{scale:g} failed[/red]: {done.stderr[-2000:]}")
            return 1
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        console.print(f"x{scale:g}: {rows[-1]}")
    first = rows[0]["cpu_seconds"] or 1.0
    table = Table(title=f"day-10k by scale ({args.store} store; flat cost: CPU ratio ~ bookings ratio)")
    for column in ("scale", "bookings", "events", "steps", "plans", "CPU s", "wall s", "CPU / first",
                   "on time", "view mismatches"):
        table.add_column(column)
    for r in rows:
        r["cpu_ratio"] = round(r["cpu_seconds"] / first, 2)
        table.add_row(f"x{r['scale']:g}", f"{r['bookings']:,}", f"{r['events']:,}", str(r["steps"]), str(r["plans"]),
                      str(r["cpu_seconds"]), str(r["wall_seconds"]), str(r["cpu_ratio"]),
                      f"{(r['on_time_ratio'] or 0) * 100:.2f} %", str(r["view_mismatches"]))
    console.print(table)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
