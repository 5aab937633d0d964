"""Composition root: builds the store, read models, services and processors from Settings."""

from __future__ import annotations

from typing import Any

from adapters.clock import SystemClock
from adapters.eventstore.factory import open_event_store
from api.auth import registry_from_settings
from api.logging import log
from api.metrics import Metrics
from api.settings import Settings
from processors.ports.clock import Clock
from projections.projection import Projection
from projections.runner import ProjectionRunner


class Container:
    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.metrics = Metrics()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.tokens, self.tokens_path = registry_from_settings(settings.tokens, settings.data_dir)
        self.store = self._open_store()
        self.read_models = self._open_read_models()
        self.projection_runner = ProjectionRunner(self.store, self.read_models, discover_projections())
        self._started = False

    def _open_store(self):  # noqa: ANN202 - adapters.eventstore.store.EventStore
        settings = self.settings
        if settings.store == "postgres":
            if not settings.store_url:
                raise ValueError("LRM_STORE=postgres needs LRM_STORE_URL=postgresql://...")
            return open_event_store("postgres", postgres_url=settings.store_url)
        if settings.store == "memory":
            return open_event_store("memory")
        return open_event_store("sqlite", sqlite_path=settings.sqlite_path())

    def _open_read_models(self):  # noqa: ANN202 - projections.readmodel.ReadModelStore
        settings = self.settings
        if settings.store == "postgres":
            from adapters.eventstore.readmodel_postgres import PostgresReadModelStore

            return PostgresReadModelStore(settings.store_url)
        if settings.store == "memory":
            from adapters.eventstore.readmodel_memory import MemoryReadModelStore

            return MemoryReadModelStore()
        from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore

        return SqliteReadModelStore(settings.readmodel_sqlite_path())

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.tokens_path is not None:
            log.info("api_tokens_generated", path=str(self.tokens_path))
        self.projection_runner.start()

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.projection_runner.stop()
        self.read_models.close()
        self.store.close()

    # -- health ----------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            self.store.ping()
            checks["event_store"] = {"ok": True, "position": self.store.max_position()}
        except Exception as error:  # noqa: BLE001 - readiness reports any failure
            checks["event_store"] = {"ok": False, "error": str(error)}
        checks["projections"] = {row["name"]: row for row in self.projection_status()}
        ready = checks["event_store"]["ok"] and all(
            row.get("ok", True) for row in checks["projections"].values()
        )
        return {"ready": ready, "checks": checks}

    def projection_status(self) -> list[dict[str, Any]]:
        runner = self.projection_runner
        head = self.store.max_position()
        ok = runner.running or not self._started
        return [
            {"name": p.name, "position": runner.position(p.name),
             "lag": max(0, head - runner.position(p.name)), "ok": ok}
            for p in runner.projections
        ]

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """Read-your-writes: True once every read model has applied ``position``."""
        if not self.projection_runner.projections:
            return True
        return self.projection_runner.wait_for_position(position, timeout)

    def refresh_gauges(self) -> None:
        for row in self.projection_status():
            self.metrics.projection_lag.labels(row["name"]).set(row["lag"])

    def rebuild_projections(self, name: str | None = None) -> None:
        if name is None:
            self.projection_runner.rebuild_all()
        else:
            self.projection_runner.rebuild(name)


def discover_projections() -> list[Projection]:
    """Every ``PROJECTIONS`` sequence of a module in ``projections/readmodels/``.

    Like the routers: one module per read model, no central list to edit.
    """
    import importlib
    import pkgutil

    try:
        package = importlib.import_module("projections.readmodels")
    except ModuleNotFoundError:
        return []
    found: list[Projection] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"projections.readmodels.{info.name}")
        found.extend(getattr(module, "PROJECTIONS", ()))
    return found
