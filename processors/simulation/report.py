"""Reports of simulation runs: the KPI rows (for the CLI's table and JSON) and a
self-contained HTML page with inline SVG plots (no scripts, no CDN)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from processors.simulation.harness import SimulationResult

BILLED = ("PROVISIONING", "RUNNING", "DRAINING")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def kpi_rows(kpis: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs in the order the CLI and the report show them."""
    wait, asap = kpis["wait_minutes"], kpis["asap_wait_minutes"]

    def num(value: Any, digits: int = 2) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    ratio = kpis["on_time_ratio"]
    rows = [
        ("instances (booked / ASAP)", f"{kpis['instances']} ({kpis['booked']} / {kpis['asap']})"),
        ("on-time starts", "—" if ratio is None else f"{ratio * 100:.2f} % ({kpis['on_time']}/{kpis['booked']})"),
        ("never ready", f"{kpis['never_ready']} {kpis['never_ready_reasons'] or ''}".strip()),
        ("interrupted (labs / minutes cut)", _cut(kpis.get("interrupted"))),
        ("cut by an admin drain (labs / minutes)", _cut(kpis.get("interrupted_by_admin"))),
        ("wait p50 / p95 / max (min)", f"{num(wait['p50'], 1)} / {num(wait['p95'], 1)} / {num(wait['max'], 1)}"),
        ("ASAP wait p50 / p95 (min)", f"{num(asap['p50'], 1)} / {num(asap['p95'], 1)}"),
        ("worker-hours", num(kpis["worker_hours"])),
        ("lower bound (h)", _bound(kpis)),
        ("offline schedule (h)", num(kpis.get("offline_hours"))),
        ("ratio to offline / to bound", f"{num(kpis.get('ratio_to_offline'), 3)} / "
                                        f"{num(kpis['ratio_to_lower_bound'], 3)}"),
        ("hours: boot / idle / busy (partial fill)", _breakdown(kpis.get("hours_breakdown"))),
        ("cost", num(kpis["cost"])),
        ("idle share", f"{kpis['idle_share'] * 100:.1f} %"),
        ("workers used", str(kpis["workers_used"])),
        ("scale actions", ", ".join(f"{k} {v}" for k, v in kpis["scale_actions"].items()) or "none"),
    ]
    for name, row in kpis["per_template"].items():
        rows.append((f"  {name}: hours / cost / idle",
                     f"{num(row['worker_hours'])} / {num(row['cost'])} / {row['idle_share'] * 100:.1f} %"))
    return rows


def _bound(kpis: dict[str, Any]) -> str:
    bound = kpis.get("lower_bound") or {}
    text = f"{kpis['lower_bound_hours']:,.2f}"
    if bound and bound.get("exact_share", 1.0) < 1.0:
        text += f" ({bound['exact_share'] * 100:.0f} % exact)"
    return text


def _breakdown(parts: dict[str, float] | None) -> str:
    if not parts:
        return "—"
    return f"{parts['boot']:,.1f} / {parts['idle']:,.1f} / {parts['busy']:,.1f} ({parts['partial_fill']:,.1f})"


def _cut(tally: dict[str, Any] | None) -> str:
    if not tally:
        return "—"
    return f"{tally['count']} / {tally['minutes']:,.0f}"


def _series(result: SimulationResult) -> tuple[list[datetime], list[int], list[int]]:
    times, billed, labs = [], [], []
    for point in result.timeline:
        times.append(point["at"])
        billed.append(sum(point["workers"].get(state, 0) for state in BILLED))
        labs.append(point["labs"])
    return times, billed, labs


def _steps(steps: Sequence[tuple[datetime, datetime, int]]) -> tuple[list[datetime], list[int]]:
    """The bound's piecewise W(t) as step-line points (0 where no lab is active)."""
    times: list[datetime] = []
    values: list[int] = []
    for start, end, workers in steps:
        if times and times[-1] != start:
            times.append(times[-1])
            values.append(0)
            times.append(start)
            values.append(0)
        times.append(start)
        values.append(workers)
        times.append(end)
        values.append(workers)
    return times, values


def _svg_chart(title: str, series: list[tuple[str, list[datetime], list[int]]], width: int = 860,
               height: int = 260) -> str:
    points = [(t, v) for _, ts, vs in series for t, v in zip(ts, vs)]
    if not points:
        return f"<p>{html.escape(title)}: no data</p>"
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    span = max((t1 - t0).total_seconds(), 1.0)
    top = max(max(v for _, v in points), 1)
    left, right, up, down = 50, 10, 20, 30

    def x(t: datetime) -> float:
        return left + (t - t0).total_seconds() / span * (width - left - right)

    def y(v: float) -> float:
        return height - down - v / top * (height - up - down)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="{left}" y="14" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{y(0)}" x2="{width - right}" y2="{y(0)}" stroke="#999"/>',
             f'<line x1="{left}" y1="{up}" x2="{left}" y2="{y(0)}" stroke="#999"/>',
             f'<text x="{left - 6}" y="{y(top) + 4}" font-size="11" text-anchor="end">{top}</text>',
             f'<text x="{left - 6}" y="{y(0) + 4}" font-size="11" text-anchor="end">0</text>']
    for hour in range(0, int(span // 3600) + 1, max(1, int(span // 3600) // 12 or 1)):
        at = t0.timestamp() + hour * 3600
        px = left + (at - t0.timestamp()) / span * (width - left - right)
        label = datetime.fromtimestamp(at, tz=t0.tzinfo).strftime("%H:%M")
        parts.append(f'<text x="{px:.1f}" y="{height - 10}" font-size="10" text-anchor="middle">{label}</text>')
    for index, (name, ts, vs) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        path: list[str] = []
        previous = None
        for t, v in zip(ts, vs):  # a step line: the value holds until the next sample
            if previous is not None:
                path.append(f"{x(t):.1f},{y(previous):.1f}")
            path.append(f"{x(t):.1f},{y(v):.1f}")
            previous = v
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(path)}"/>')
        parts.append(f'<text x="{width - right - 150}" y="{up + 14 * (index + 1)}" font-size="12" '
                     f'fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(results: Sequence[SimulationResult], *, title: str = "lablet simulate") -> str:
    headers = "".join(f"<th>{html.escape(r.policy)}</th>" for r in results)
    table_rows = []
    labels = [label for label, _ in kpi_rows(results[0].kpis)] if results else []
    values = [dict(kpi_rows(r.kpis)) for r in results]
    for label in labels:
        cells = "".join(f"<td>{html.escape(v.get(label, ''))}</td>" for v in values)
        table_rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    series = {r.policy: _series(r) for r in results}
    fleet = [(name, times, billed) for name, (times, billed, _) in series.items()]
    if results and results[0].bound_steps:
        fleet.append((f"fewest needed W(t) ({results[0].policy})", *_steps(results[0].bound_steps)))
    labs = [(name, times, live) for name, (times, _, live) in series.items()]
    first = results[0] if results else None
    meta = (f"workload <b>{html.escape(first.workload)}</b>, seed {first.seed}, "
            f"{first.steps} steps" if first else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:960px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}</style>
</head><body><h1>{html.escape(title)}</h1><p>{meta}</p>
<table><tr><th></th>{headers}</tr>{''.join(table_rows)}</table>
<h2>Billed workers (PROVISIONING, RUNNING, DRAINING)</h2>{_svg_chart("billed workers", fleet)}
<h2>Labs ready or running</h2>{_svg_chart("live labs", labs)}
<p>Worker-hours are billed hours (PROVISIONING, RUNNING, DRAINING). Over the labs the run served, whatever worker
held them: the <b>lower bound</b> is, at every instant, the fewest workers of any eligible templates that can hold
the labs then active (exact bin packing in cpu, memory, storage, nodes and ports), plus one boot per worker needed
at the peak — no policy can spend less; the <b>offline schedule</b> is what a planner knowing every booking in
advance spends (best fit, nominal boots). <b>Partial fill</b> = busy hours above the bound's per-instant count.
<b>Interrupted</b>: ready labs the system ended before their booked end (docs/simulation.md).</p>
</body></html>
"""
