"""The ``lablet`` command line."""

from __future__ import annotations

import time

import typer

from api.settings import Settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Lablet Resource Manager")
projections_cli = typer.Typer(no_args_is_help=True, help="Read models (projections)")
cli.add_typer(projections_cli, name="projections")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="overrides LRM_HOST"),
    port: int | None = typer.Option(None, help="overrides LRM_PORT"),
    role: list[str] = typer.Option(
        None, "--role", help="api|projections|scheduler|autoscaler|workers|instances|dispatcher|all "
                             "(repeatable or comma-separated; overrides LRM_ROLES)"),
    workers: int | None = typer.Option(None, min=1, max=64, help="API processes (overrides LRM_WORKERS)"),
) -> None:
    """Start the HTTP API and every processor in this process (embedded default), or only
    the given roles (a split deployment: docs/operations/deployment.md)."""
    import uvicorn

    from api.container import Container
    from api.app import create_app
    from api.logging import configure_logging
    from api.roles import describe, health_app, parse_roles

    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    try:
        roles = parse_roles(role or settings.roles)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--role") from None
    configure_logging(settings.log_level, settings.log_format)
    if (workers or settings.workers) > 1 and "api" in roles:
        _serve_workers(settings, roles, workers or settings.workers)
        return
    from api import telemetry

    telemetry.configure_tracing(settings.otel_service_name, roles=describe(roles))
    telemetry.enrich_logs()  # instance_id / worker_id / trace_id fields on every JSON line
    container = Container(settings, roles=roles)
    # Without the API role the process still answers /healthz, /readyz and /metrics.
    app = create_app(container) if "api" in roles else _health_only(container)
    if telemetry.enabled():
        app = telemetry.TracingMiddleware(app)  # outermost: the span covers the whole request
    typer.echo(f"Lablet Resource Manager ({describe(roles)}) on http://{settings.host}:{settings.port}/ "
               f"(store: {settings.store}, data: {settings.data_dir})", err=True)
    if container.tokens_path is not None:
        typer.echo(f"API tokens (one per role) are in {container.tokens_path}", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


def _serve_workers(settings: Settings, roles: frozenset[str], count: int) -> None:
    """The API in ``count`` uvicorn worker processes; the other roles (projections and the
    processors) in one more process, ``lablet serve --role <them>`` on port + 1 (its
    /healthz, /readyz, /metrics). The API workers then read the checkpoints that process
    keeps instead of each running a projection runner, and do not seed (it does)."""
    import os
    import subprocess
    import sys

    import uvicorn

    from api.roles import describe

    others = roles - {"api"}
    child = None
    if others:
        # The child seeds the demo and prints the banner: it must name the API's port, not its own.
        child_env = {**os.environ, "LRM_SEED": "true", "LRM_WORKERS": "1", "LRM_PUBLIC_PORT": str(settings.port)}
        child = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--role", describe(others),
                                  "--host", settings.host, "--port", str(settings.port + 1)], env=child_env)
    else:  # api only: seed once here, not in every worker
        from api.container import Container

        seeding = Container(settings, roles=frozenset({"api"}))
        try:
            seeding.seed_worker_templates()
        finally:
            seeding.close()
    os.environ.update(LRM_ROLES="api", LRM_SEED="false",
                      LRM_API_RUNS_PROJECTIONS="false" if "projections" in others else "true")
    typer.echo(f"Lablet Resource Manager: API in {count} processes on http://{settings.host}:{settings.port}/"
               + (f", {describe(others)} in one process (health on port {settings.port + 1})" if others else ""),
               err=True)
    try:
        uvicorn.run("api.app:create_worker_app", factory=True, host=settings.host, port=settings.port,
                    workers=count, log_config=None, access_log=False)
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


def _health_only(container):  # noqa: ANN001, ANN202 - a Starlette app that starts the container
    from contextlib import asynccontextmanager

    from api.roles import health_app

    app = health_app(container)

    @asynccontextmanager
    async def lifespan(_):  # noqa: ANN001, ANN202
        container.start()
        try:
            yield
        finally:
            container.stop()

    app.router.lifespan_context = lifespan
    return app


@projections_cli.command("rebuild")
def rebuild(
    name: str = typer.Argument(None, help="one projection; all when omitted"),
    processes: int = typer.Option(1, min=1, max=16, help="rebuild groups of read models in this many processes"),
) -> None:
    """Rebuild read models from the event log into a shadow copy, then switch to it at once
    (the current ones keep serving meanwhile), with a progress bar: events/s and ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.container import Container
    from api.logging import configure_logging

    settings = Settings()
    configure_logging("WARNING", "console")
    container = Container(settings)
    with Progress(TextColumn("rebuilding {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("positions"), TextColumn("{task.fields[rate]} events/s"),
                  TimeRemainingColumn()) as bar:
        task = bar.add_task(name or "all read models", total=None, rate="-")
        started = time.monotonic()
        first: list[int] = []

        def progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
            rate = (done - first[0]) / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=max(total, 1), rate=f"{rate:,.0f}")

        try:
            replayed = container.rebuild_projections(name, progress, processes=processes)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="NAME") from None
        finally:
            container.close()
    seconds = time.monotonic() - started
    typer.echo(f"rebuilt {name or 'all read models'}: {replayed} events replayed in {seconds:.1f} s "
               f"({replayed / max(seconds, 1e-6):,.0f} events/s), switched over")


@projections_cli.command("list")
def list_projections() -> None:
    """Show each projection with its stored checkpoint, lag, parked events and problems."""
    from api.container import Container

    # What the stored checkpoints say (a runner of this process, never started, would say 0);
    # a shadow rebuild's progress is known to the serving process only: GET /api/v1/projections.
    container = Container(Settings(api_runs_projections=False), roles=frozenset({"api"}))
    try:
        for row in container.projection_status():
            extra = f" ({'; '.join(row['problems'])})" if row.get("problems") else ""
            typer.echo(f"{row['name']:<28} v{row['version']:<3} position={row['position']:<10} "
                       f"lag={row['lag']:<8} parked={row['parked']}{extra}")
    finally:
        container.close()


@projections_cli.command("parked")
def parked(
    name: str = typer.Argument(None, help="one projection; all when omitted"),
    status: str = typer.Option("parked", help="parked|skipped|retried|all"),
) -> None:
    """List events a read model parked (could not apply), with the error."""
    from api.container import Container
    from projections.parking import list_parked

    container = Container(Settings())
    try:
        found = list_parked(container.read_models, name, None if status == "all" else status)
        for item in found:
            typer.echo(f"{item.projection:<24} position={item.position:<10} {item.status:<8} "
                       f"{item.event_type} on {item.stream_id} ({item.stage}): {item.error}")
        if not found:
            typer.echo("no parked events")
    finally:
        container.close()


@projections_cli.command("retry")
def retry_parked(name: str, position: int) -> None:
    """Apply a parked event now (after a fix); it stays parked if it fails again."""
    _resolve_parked(name, position, retry=True)


@projections_cli.command("skip")
def skip_parked(name: str, position: int) -> None:
    """Give up on a parked event (kept as skipped; readiness no longer waits for it)."""
    _resolve_parked(name, position, retry=False)


def _resolve_parked(name: str, position: int, *, retry: bool) -> None:
    from api.container import Container
    from projections.resolving import ParkedRetryFailed

    container = Container(Settings())
    try:
        runner = container.projection_runner
        resolved = runner.retry_parked(name, position) if retry else runner.skip_parked(name, position)
        typer.echo(f"{name}@{position}: {resolved.status}")
    except KeyError as error:
        typer.echo(str(error).strip("'\""), err=True)
        raise typer.Exit(1) from None
    except ParkedRetryFailed as error:
        typer.echo(f"still fails: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()


def _register_simulation() -> None:
    from api.simulate import register

    register(cli)


_register_simulation()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
