"""``lablet replay`` reads the demand back from a recorded store; the CLI commands run."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api.cli import cli
from api.simulate import open_store, recorded_demand, run_simulation
from processors.simulation import Workload
from processors.simulation.report import html_report

ROOT = Path(__file__).resolve().parents[2]


def test_recorded_demand_is_the_workload_that_was_run(small: Workload, tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'events.sqlite3'}"
    simulated = run_simulation(small, store_url=url)
    store = open_store(url)
    try:
        demand, actual = recorded_demand(store)
    finally:
        store.close()
    replayed = demand.workload
    assert len(replayed.bookings) == len(small.bookings)
    by_owner = {b.owner: b for b in replayed.bookings}
    for booking in small.bookings:
        again = by_owner[booking.owner]
        assert (again.at, again.start, again.minutes, again.no_show) == (
            booking.at, booking.start, booking.minutes, booking.no_show)
        assert (again.finish_after is None) == (booking.finish_after is None)
    assert {d.name for d in replayed.definitions} == {d.name for d in small.definitions}
    assert actual["on_time"] == simulated.kpis["on_time"]
    assert actual["booked"] == simulated.kpis["booked"]


def test_simulate_command_compares_and_writes_a_report(tmp_path: Path) -> None:
    workload = tmp_path / "w.yaml"
    workload.write_text("""
name: tiny
start: 2026-03-02T07:00:00Z
hours: 3
definitions: [{name: d, node_count: 2, license_affinity: [PERSONAL]}]
bookings:
  - {id: a, at: "07:00", definition: d, start: "08:00", minutes: 30}
  - {id: b, at: "07:00", definition: d, start: "08:15", minutes: 30}
""")
    report = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["simulate", "--workload", str(workload), "--compare", "--report", str(report)])
    assert result.exit_code == 0, result.output
    for policy in ("default", "reactive", "static"):
        assert policy in result.output
    page = report.read_text()
    assert "<svg" in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_replay_command(small: Workload, tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'events.sqlite3'}"
    run_simulation(small, store_url=url)
    result = CliRunner().invoke(cli, ["replay", "--store", url, "--policy", "static", "--json"])
    assert result.exit_code == 0, result.output
    assert '"recorded"' in result.output and '"static"' in result.output


def test_html_report_has_a_column_per_policy(small: Workload) -> None:
    results = [run_simulation(small, policy=p) for p in ("default", "static")]
    page = html_report(results)
    assert page.count("<svg") == 2
    assert "<th>default</th>" in page and "<th>static</th>" in page
    assert "fewest needed W(t) (default)" in page  # the lower bound's workers over time, beside the fleet
    for row in ("interrupted (labs / minutes cut)", "lower bound (h)", "offline schedule (h)",
                "hours: boot / idle / busy (partial fill)"):
        assert row in page
