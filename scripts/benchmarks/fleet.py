"""Autoscaler fleet cost on every shipped workload against the two references (issue 15).

    scripts/bench fleet [--policy default] [--only NAME ...] [--day-scale 0.1] [--scale 1.0]
                        [--scaling KEY=VALUE ...] [--label before] [--json] [--markdown]

Per workload in ``workloads/`` (each ``<name>-bootfail`` variant included): worker-hours,
the valid lower bound, the clairvoyant offline schedule and the ratio to it, labs
interrupted by the system, on-time starts, and where the hours went (boot, idle, partial
fill). ``day-10k`` runs at ``--day-scale`` (the full day takes far too long). KPIs are
deterministic for a workload's seed; only the CPU seconds depend on the machine. ``--markdown``
prints rows for the table in docs/benchmarks.md, the ``--label`` in the first column.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from api.simulate import _parse_scaling, read_workload, run_simulation
from processors.simulation import SimulationSettings

ROOT = Path(__file__).resolve().parents[2]


def measure(name: str, policy: str, scale: float, knobs: dict[str, Any]) -> dict[str, Any]:
    workload = read_workload(ROOT / "workloads" / f"{name}.yaml", scale=scale)
    result = run_simulation(workload, policy=policy, settings=SimulationSettings(scaling=knobs))
    k = result.kpis
    return {"workload": name, "scale": scale, "bookings": len(workload.bookings), "policy": policy,
            "worker_hours": k["worker_hours"], "lower_bound_hours": k["lower_bound_hours"],
            "exact_share": k["lower_bound"]["exact_share"], "offline_hours": k["offline_hours"],
            "ratio_to_offline": k["ratio_to_offline"], "ratio_to_lower_bound": k["ratio_to_lower_bound"],
            "interrupted": k["interrupted"], "on_time_ratio": k["on_time_ratio"], "never_ready": k["never_ready"],
            "late": k["late"], "hours_breakdown": k["hours_breakdown"], "workers_used": k["workers_used"],
            "cpu_seconds": round(result.cpu_seconds, 1)}


def markdown_row(row: dict[str, Any], label: str) -> str:
    parts = row["hours_breakdown"]
    scale = f" ×{row['scale']:g}" if row["scale"] != 1 else ""
    on_time = "—" if row["on_time_ratio"] is None else f"{row['on_time_ratio'] * 100:.2f} %"
    exact = "" if row["exact_share"] >= 1 else f" ({row['exact_share'] * 100:.0f} % exact)"
    cut = row["interrupted"]
    return (f"| {row['workload']}{scale} ({row['bookings']}) | {label} | {row['worker_hours']:.1f} | "
            f"{row['lower_bound_hours']:.1f}{exact} | {row['offline_hours']:.1f} | {row['ratio_to_offline']:.3f} | "
            f"{cut['count']} / {cut['minutes']:.0f} | {on_time} | {row['never_ready']} | "
            f"{parts['boot']:.1f} | {parts['idle']:.1f} | {parts['partial_fill']:.1f} | {row['cpu_seconds']:.0f} |")


HEADER = ("| workload (bookings) | policy | worker-h | lower bound h | offline h | ratio to offline | "
          "interrupted (labs / min) | on time | never ready | boot h | idle h | partial fill h | CPU s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="default")
    parser.add_argument("--only", nargs="*", default=None, help="workload names (default: every file)")
    parser.add_argument("--day-scale", type=float, default=0.1, help="scale of day-10k and its variant")
    parser.add_argument("--scale", type=float, default=1.0, help="scale of the other workloads")
    parser.add_argument("--scaling", nargs="*", default=[], help="policy knobs KEY=VALUE")
    parser.add_argument("--label", default=None, help="the policy column's text in --markdown")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml"))
    knobs = _parse_scaling(args.scaling)
    if args.markdown:
        print(HEADER, flush=True)
    rows = []
    for name in names:
        scale = args.day_scale if name.startswith("day-10k") else args.scale
        row = measure(name, args.policy, scale, knobs)
        rows.append(row)
        if args.markdown:
            print(markdown_row(row, args.label or args.policy), flush=True)
        elif not args.json:
            print(json.dumps(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
