"""The ``lablet`` command line."""

from __future__ import annotations

import typer

from api.settings import Settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Lablet Resource Manager")
projections_cli = typer.Typer(no_args_is_help=True, help="Read models (projections)")
cli.add_typer(projections_cli, name="projections")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="overrides LRM_HOST"),
    port: int | None = typer.Option(None, help="overrides LRM_PORT"),
) -> None:
    """Start the HTTP API and every processor in this process (embedded default)."""
    import uvicorn

    from api.container import Container
    from api.app import create_app
    from api.logging import configure_logging

    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    configure_logging(settings.log_level, settings.log_format)
    container = Container(settings)
    app = create_app(container)
    typer.echo(f"Lablet Resource Manager on http://{settings.host}:{settings.port}/ "
               f"(store: {settings.store}, data: {settings.data_dir})", err=True)
    if container.tokens_path is not None:
        typer.echo(f"API tokens (one per role) are in {container.tokens_path}", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


@projections_cli.command("rebuild")
def rebuild(name: str = typer.Argument(None, help="one projection; all when omitted")) -> None:
    """Drop read models and rebuild them from the event log, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from api.container import Container
    from api.logging import configure_logging

    settings = Settings()
    configure_logging("WARNING", "console")
    container = Container(settings)
    with Progress(TextColumn("rebuilding {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("positions"), TimeRemainingColumn()) as bar:
        task = bar.add_task(name or "all read models", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        try:
            replayed = container.rebuild_projections(name, progress)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="NAME") from None
        finally:
            container.close()
    typer.echo(f"rebuilt {name or 'all read models'}: {replayed} events replayed")


@projections_cli.command("list")
def list_projections() -> None:
    """Show each projection with its checkpoint and lag."""
    from api.container import Container

    container = Container(Settings())
    try:
        for row in container.projection_status():
            typer.echo(f"{row['name']:<28} position={row['position']:<10} lag={row['lag']}")
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
