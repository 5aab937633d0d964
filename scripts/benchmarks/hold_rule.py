"""What the hold rule costs: the offline schedule placed by the booked holds (issue 15).

    scripts/bench hold_rule [--only NAME ...] [--day-scale 0.1] [--markdown]

The simulator's ``offline_hours`` places every lab by the span it was *served* (from its hold's
start to its release: the real end, early finishes and instant teardown included). An online
scheduler cannot: SPEC §4 reserves ``[timeslot_start − lead, timeslot_end + teardown_margin)``
for every booking when it is placed, before anyone knows how early it will end. Per workload
this runs the default policy and prints, over the same served labs (the KPIs' spans):

- ``offline``: the KPI (placed and billed by the served spans);
- ``by booked holds``: the same planner placing each lab as if it held its worker until
  ``timeslot_end + teardown_margin`` (a clairvoyant of the *bookings*, bound by the hold rule),
  billed by the served spans; ``no margin``: until ``timeslot_end`` only (still no early ends);
- each as a ratio: run worker-hours / it.

So ``offline → no margin`` is what knowing early finishes is worth, ``no margin → by booked
holds`` what the teardown margin costs in placement, and ``run / by booked holds`` how far the
online policy is from a planner that knew every booking in advance under the same hold rule.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from api.simulate import build_simulation, quiet_processors, read_workload
from domain.scaling.cost import state_intervals
from domain.worker import WorkerState
from processors.simulation import SimulationSettings
from processors.simulation.capacity import LabKind, LabSpan, WorkerKind
from processors.simulation.offline import offline_schedule

ROOT = Path(__file__).resolve().parents[2]
_UP = frozenset({WorkerState.RUNNING, WorkerState.DRAINING})


def measure(name: str, scale: float) -> dict[str, Any]:
    workload = read_workload(ROOT / "workloads" / f"{name}.yaml", scale=scale)
    simulation = build_simulation(workload, settings=SimulationSettings())
    with quiet_processors():
        result = simulation.run()
    collector, until = simulation.collector, workload.end
    margin = simulation.settings.teardown_margin
    up: dict[str, list[tuple[datetime, datetime]]] = {}
    for worker_id, changes in collector.transitions.items():
        up[worker_id] = [(i.start, i.end) for i in state_intervals(worker_id, "", list(changes), until) if i.state in _UP]
    spans: list[LabSpan] = []
    booked: dict[str, datetime] = {}
    unmargined: dict[str, datetime] = {}
    for n, hold in enumerate([*collector.served, *collector.holds.values()]):
        facts = collector.instances.get(hold.instance_id)
        kind = LabKind.of(hold.resources.to_dict(), hold.nodes, hold.ports, facts.requirements if facts else {})
        for k, (s, e) in enumerate(up.get(hold.worker_id, [])):  # clipped to its worker's up time, as the KPIs
            lo, hi = max(s, hold.start), min(e, hold.end, until)
            if hi <= lo:
                continue
            lab_id = f"{hold.instance_id}#{n}.{k}"
            spans.append(LabSpan(lab_id, kind, lo, hi))
            if facts is not None and hi >= min(hold.end, until):  # the piece the booking ends in
                booked[lab_id] = max(hi, facts.end + margin)
                unmargined[lab_id] = max(hi, facts.end)
    kinds = [WorkerKind.from_spec(t) for t in simulation.templates]
    hours = result.kpis["worker_hours"]
    offline = offline_schedule(spans, kinds).hours
    by_booked = offline_schedule(spans, kinds, placed_by=booked).hours
    no_margin = offline_schedule(spans, kinds, placed_by=unmargined).hours
    return {"workload": name, "scale": scale, "bookings": len(workload.bookings), "worker_hours": hours,
            "kpi_offline_hours": result.kpis["offline_hours"], "offline_hours": round(offline, 4),
            "no_margin_hours": round(no_margin, 4), "by_booked_holds_hours": round(by_booked, 4),
            "teardown_margin_minutes": margin / timedelta(minutes=1)}


HEADER = ("| workload (bookings) | worker-h | offline h (served spans) | placed by booked ends, no margin h | "
          "placed by booked holds h | run / offline | run / by booked holds | by booked holds / offline |\n"
          "|---|---|---|---|---|---|---|---|")


def markdown_row(row: dict[str, Any]) -> str:
    scale = f" ×{row['scale']:g}" if row["scale"] != 1 else ""
    h, off, nm, bb = row["worker_hours"], row["offline_hours"], row["no_margin_hours"], row["by_booked_holds_hours"]
    return (f"| {row['workload']}{scale} ({row['bookings']}) | {h:.1f} | {off:.1f} | {nm:.1f} | {bb:.1f} | "
            f"{h / off:.3f} | {h / bb:.3f} | {bb / off:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="workload names (default: every file)")
    parser.add_argument("--day-scale", type=float, default=0.1, help="scale of day-10k and its variant")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    names = args.only or sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml"))
    if args.markdown:
        print(HEADER, flush=True)
    for name in names:
        row = measure(name, args.day_scale if name.startswith("day-10k") else 1.0)
        print(markdown_row(row) if args.markdown else row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
