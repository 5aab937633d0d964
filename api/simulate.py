"""Composition for the simulator: a virtual clock, the simulated cloud and CML, a store
(in-memory by default), and the ``lablet simulate`` / ``lablet replay`` commands.

The harness itself (``processors/simulation``) knows only ports; this module picks the
adapters: ``VirtualClock``, ``SimulatedCloud`` (boot jitter and failures from the
workload, seeded), ``SimulatedCml`` (instant: ``time_scale=0``; lab boot is not modelled),
an in-memory artifact store, and ``open_event_store`` for the backend.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from adapters.eventstore.factory import open_event_store
from domain.worker_template import WorkerTemplateSpec, parse_templates_yaml
from processors.simulation import Simulation, SimulationResult, SimulationSettings, Workload, load_workload

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATES = ROOT / "config" / "worker-templates.yaml"
POLICIES = ("default", "reactive", "static")


class MemoryArtifacts:
    """The artifact port, in a dict (a simulation writes thousands of small lab YAMLs)."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def uri_for(self, key: str) -> str:
        return f"mem://{key}"

    def _key(self, uri_or_key: str) -> str:
        return uri_or_key.removeprefix("mem://")

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self._data[self._key(key)] = bytes(data)
        return self.uri_for(self._key(key))

    def get(self, uri_or_key: str) -> bytes:
        from processors.ports.artifacts import ArtifactNotFound

        try:
            return self._data[self._key(uri_or_key)]
        except KeyError:
            raise ArtifactNotFound(f"no artifact {uri_or_key!r}") from None

    def exists(self, uri_or_key: str) -> bool:
        return self._key(uri_or_key) in self._data

    def delete(self, uri_or_key: str) -> None:
        self._data.pop(self._key(uri_or_key), None)

    def put_lab_yaml(self, definition_name: str, sha256: str, text: str) -> str:
        from processors.ports.artifacts import lab_yaml_key

        return self.put(lab_yaml_key(definition_name, sha256), text.encode("utf-8"), "application/yaml")

    def close(self) -> None:
        self._data.clear()


def templates_for(workload: Workload, path: Path = DEFAULT_TEMPLATES) -> list[WorkerTemplateSpec]:
    if workload.templates is not None:
        return [WorkerTemplateSpec.from_dict(t) for t in workload.templates]
    return parse_templates_yaml(path.read_text())


def open_store(url: str | None, *, schema: str | None = None) -> Any:
    """``None``/``memory`` → in-memory; ``sqlite:PATH``; ``postgresql://…`` in ``schema`` (created
    if missing; a simulation wants an empty one: it registers its own templates and definitions)."""
    if url in (None, "", "memory"):
        return open_event_store("memory")
    if url.startswith("sqlite:"):
        return open_event_store("sqlite", sqlite_path=Path(url.removeprefix("sqlite:").removeprefix("//")))
    if url.startswith(("postgres://", "postgresql://")):
        return open_event_store("postgres", postgres_url=url, schema=schema)
    raise ValueError(f"store URL {url!r}: use memory, sqlite:PATH or postgresql://...")


def build_simulation(workload: Workload, *, policy: str = "default", store: Any = None,
                     settings: SimulationSettings | None = None) -> Simulation:
    clock = VirtualClock(workload.start)
    cloud = SimulatedCloud(clock, failure_probability=workload.cloud.boot_failure_rate,
                           jitter=workload.cloud.jitter, seed=workload.seed)
    cml = SimulatedCml(SimulatedCmlSettings(time_scale=0, poll_interval_seconds=0, seed=workload.seed))
    settings = replace(settings or SimulationSettings(), policy=policy)
    return Simulation(workload, store=store if store is not None else open_event_store("memory"), clock=clock,
                      cloud=cloud, cml=cml, artifacts=MemoryArtifacts(), templates=templates_for(workload),
                      settings=settings)


def run_simulation(workload: Workload, *, policy: str = "default", store_url: str | None = None,
                   settings: SimulationSettings | None = None,
                   progress: Callable[[datetime, float], None] | None = None,
                   schema: str | None = None) -> SimulationResult:
    store = open_store(store_url, schema=schema)
    try:
        simulation = build_simulation(workload, policy=policy, store=store, settings=settings)
        started, cpu = time.perf_counter(), time.process_time()
        with quiet_processors():
            result = simulation.run(progress)
        result.wall_seconds = time.perf_counter() - started
        result.cpu_seconds = time.process_time() - cpu
        return result
    finally:
        store.close()


@contextmanager
def quiet_processors(level: int = logging.ERROR) -> Iterator[None]:
    """The processors warn about what a simulation does on purpose (no-shows, boot failures)."""
    logger = logging.getLogger("processors")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def read_workload(path: Path, *, seed: int | None = None, scale: float = 1.0) -> Workload:
    def include(name: str) -> str:
        """``extends:`` names a file beside the workload, never one elsewhere."""
        if Path(name).name != name:
            raise OSError(f"{name!r} is not a file name in {path.parent}")
        return (path.parent / name).read_text()

    return load_workload(path.read_text(), seed=seed, scale=scale, include=include)


def results_json(results: Sequence[SimulationResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, default=str)


# -- the commands (registered on ``lablet`` by api/cli.py) -----------------------------------

def _parse_scaling(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` → ScalingSettings fields (minutes for durations, true/false for flags)."""
    from datetime import timedelta

    from domain.scaling import ScalingSettings

    durations = {k for k, v in vars(ScalingSettings()).items() if isinstance(v, timedelta)}
    known = set(ScalingSettings.__dataclass_fields__)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if key not in known or key == "instantiation_lead":
            raise ValueError(f"--scaling {pair!r}: known keys are {', '.join(sorted(known - {'instantiation_lead'}))}")
        if key in durations:
            out[key] = timedelta(minutes=float(raw))
        elif raw.lower() in ("true", "false", "yes", "no", "1", "0"):
            out[key] = raw.lower() in ("true", "yes", "1")
        else:
            out[key] = json.loads(raw)
    return out


def _progress_runner(label: str) -> tuple[Any, Callable[[datetime, float], None]]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"),
                   TextColumn("sim {task.fields[at]}"), TimeElapsedColumn(), transient=False)
    task = bar.add_task(label, total=1.0, at="")

    def progress(at: datetime, fraction: float) -> None:
        bar.update(task, completed=fraction, at=at.strftime("%d %H:%M"))

    return bar, progress


def simulate_policies(workload: Workload, policies: Sequence[str], *, store_url: str | None = None,
                      settings: SimulationSettings | None = None, show_progress: bool = True,
                      schema: str | None = None) -> list[SimulationResult]:
    results = []
    for policy in policies:
        if show_progress:
            bar, progress = _progress_runner(f"{workload.name} · {policy}")
            with bar:
                results.append(run_simulation(workload, policy=policy, store_url=store_url, settings=settings,
                                              progress=progress, schema=_schema_for(schema, policy, len(policies))))
        else:
            results.append(run_simulation(workload, policy=policy, store_url=store_url, settings=settings,
                                          schema=_schema_for(schema, policy, len(policies))))
    return results


def _schema_for(schema: str | None, policy: str, runs: int) -> str | None:
    """One schema per policy when several runs share a PostgreSQL database."""
    return f"{schema}_{policy}" if schema and runs > 1 else schema


def print_results(results: Sequence[SimulationResult], *, actual: dict[str, Any] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from processors.simulation.report import kpi_rows

    table = Table(title=f"{results[0].workload} (seed {results[0].seed})" if results else "simulation")
    table.add_column("KPI")
    columns: list[tuple[str, dict[str, str]]] = []
    if actual is not None:
        columns.append(("recorded", dict(kpi_rows(actual))))
    columns += [(r.policy, dict(kpi_rows(r.kpis))) for r in results]
    for name, _ in columns:
        table.add_column(name)
    labels = list(dict(kpi_rows(results[0].kpis if results else actual or {})))
    for label in labels:
        table.add_row(label, *[values.get(label, "") for _, values in columns])
    table.add_row("wall seconds (CPU seconds)", *([""] if actual is not None else []),
                  *[f"{r.wall_seconds:.1f} ({r.cpu_seconds:.1f})" for r in results])
    Console().print(table)


def register(cli: Any) -> None:
    """Add ``simulate`` and ``replay`` to the ``lablet`` command line."""
    import typer

    @cli.command()
    def simulate(
        workload: Path = typer.Option(..., "--workload", "-w", exists=True, dir_okay=False,
                                      help="workload file (YAML/JSON), e.g. workloads/exam-wave.yaml"),
        policy: str = typer.Option("default", help="scaling policy: default, reactive, static"),
        seed: int | None = typer.Option(None, help="overrides the workload's seed"),
        compare: bool = typer.Option(False, "--compare", help="run default, reactive and static side by side"),
        report: Path | None = typer.Option(None, "--report", help="write an HTML report with plots"),
        store: str | None = typer.Option(None, help="memory (default), sqlite:PATH or postgresql://..."),
        schema: str | None = typer.Option(None, help="PostgreSQL schema for --store (an empty one per run)"),
        scale: float = typer.Option(1.0, help="multiply generated booking counts (0.1 for a quick look)"),
        scaling: list[str] = typer.Option([], "--scaling", help="policy knob KEY=VALUE (minutes for durations), "
                                          "e.g. stop_between_reservations=true"),
        as_json: bool = typer.Option(False, "--json", help="print the KPIs as JSON"),
    ) -> None:
        """Replay a workload on a virtual clock through the real processors; report KPIs."""
        if policy not in POLICIES:
            raise typer.BadParameter(f"one of {', '.join(POLICIES)}", param_hint="--policy")
        try:
            loaded = read_workload(workload, seed=seed, scale=scale)
            knobs = _parse_scaling(scaling)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        policies = POLICIES if compare else (policy,)
        results = simulate_policies(loaded, policies, store_url=store, settings=SimulationSettings(scaling=knobs),
                                    show_progress=not as_json, schema=schema)
        if as_json:
            typer.echo(results_json(results))
        else:
            print_results(results)
        if report is not None:
            from processors.simulation.report import html_report

            report.write_text(html_report(results, title=f"lablet simulate: {loaded.name}"))
            typer.echo(f"report written to {report}", err=True)

    @cli.command()
    def replay(
        store: str = typer.Option(..., "--store", help="the recorded store: sqlite:PATH or postgresql://..."),
        schema: str | None = typer.Option(None, help="its PostgreSQL schema"),
        policy: str = typer.Option("default", help="the policy to re-run the demand under"),
        seed: int = typer.Option(0, help="seed of the simulated cloud and CML"),
        scaling: list[str] = typer.Option([], "--scaling", help="policy knob KEY=VALUE"),
        report: Path | None = typer.Option(None, "--report", help="write an HTML report"),
        as_json: bool = typer.Option(False, "--json", help="print the KPIs as JSON"),
    ) -> None:
        """Re-run the recorded demand of a store under another policy (into a scratch in-memory store)."""
        if policy not in POLICIES:
            raise typer.BadParameter(f"one of {', '.join(POLICIES)}", param_hint="--policy")
        try:
            recorded = open_store(store, schema=schema)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--store") from None
        try:
            demand, actual = recorded_demand(recorded, seed=seed)
        finally:
            recorded.close()
        typer.echo(f"recorded demand: {len(demand.workload.bookings)} requests from {demand.first:%Y-%m-%d %H:%M} "
                   f"to {demand.last:%Y-%m-%d %H:%M} ({demand.skipped} cancelled before ready left out)", err=True)
        results = simulate_policies(demand.workload, (policy,), settings=SimulationSettings(
            scaling=_parse_scaling(scaling)), show_progress=not as_json)
        if as_json:
            typer.echo(json.dumps({"recorded": actual, "replayed": [r.to_dict() for r in results]}, indent=2,
                                  default=str))
        else:
            print_results(results, actual=actual)
        if report is not None:
            from processors.simulation.report import html_report

            report.write_text(html_report(results, title="lablet replay"))


def recorded_demand(store: Any, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """The demand of a store as a workload, and the KPIs of what actually happened there."""
    from processors.simulation import KpiCollector
    from processors.simulation.demand import workload_from_log

    def events() -> Any:
        after = 0
        while True:
            batch = store.read_all(after=after, limit=5000)
            if not batch:
                return
            yield from batch
            after = batch[-1].position or after

    demand = workload_from_log(events(), seed=seed)
    collector = KpiCollector()
    collector.observe_all(events())
    return demand, collector.report(demand.workload.end)
