"""Composition root: builds the store, read models, services and processors from Settings."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from adapters.clock import SystemClock
from adapters.eventstore.factory import open_event_store
from api import telemetry
from api.auth import registry_from_settings
from api.logging import log
from api.metrics import Metrics
from api.settings import Settings
from processors.ports.clock import Clock
from projections.projection import Projection
from projections.runner import ProjectionRunner


class Container:
    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 roles: frozenset[str] | None = None) -> None:
        from api.roles import parse_roles

        self.settings = settings
        # Which parts this process runs (api/roles.py); every part is built, only these start.
        self.roles = roles if roles is not None else parse_roles(settings.roles)
        self.leases: list[Any] = []
        self.clock: Clock = clock or SystemClock()
        self._system_clock = clock is None
        self.metrics = Metrics()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.tokens, self.tokens_path = registry_from_settings(settings.tokens, settings.data_dir)
        self.store = self._open_store()
        self.read_models = self._open_read_models()
        self.projection_runner = ProjectionRunner(self.store, self.read_models, discover_projections())
        self._wire_control_api()
        self._wire_cloudevents()
        self._wire_instance_api()
        self._wire_people()
        self._wire_fleet()
        self._wire_scheduler()
        self._wire_instance_controller()
        self._wire_classroom()
        self._started = False
        self._closed = False

    def _open_store(self):  # noqa: ANN202 - adapters.eventstore.store.EventStore
        settings = self.settings
        if settings.store == "postgres":
            if not settings.store_url:
                raise ValueError("LRM_STORE=postgres needs LRM_STORE_URL=postgresql://...")
            return open_event_store("postgres", postgres_url=settings.store_url)
        if settings.store == "esdb":
            if not (settings.esdb_uri and settings.readmodel_url):
                raise ValueError("LRM_STORE=esdb needs LRM_ESDB_URI and LRM_READMODEL_URL=postgresql://...")
            return open_event_store("esdb", esdb_uri=settings.esdb_uri, person_keys_url=settings.readmodel_url)
        if settings.store == "memory":
            return open_event_store("memory")
        return open_event_store("sqlite", sqlite_path=settings.sqlite_path())

    def _open_read_models(self):  # noqa: ANN202 - projections.readmodel.ReadModelStore
        settings = self.settings
        if settings.shared_postgres_url():
            from adapters.eventstore.readmodel_postgres import PostgresReadModelStore

            return PostgresReadModelStore(settings.shared_postgres_url())
        if settings.store == "memory":
            from adapters.eventstore.readmodel_memory import MemoryReadModelStore

            return MemoryReadModelStore()
        from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore

        return SqliteReadModelStore(settings.readmodel_sqlite_path())

    # -- control API: worker templates, definitions (+ artifact store), workers ----------
    def _wire_control_api(self) -> None:
        from processors.commands.definitions import DefinitionService
        from processors.commands.templates import TemplateService
        from processors.commands.workers import WorkerService
        from projections.readmodels.workers import WorkerQueries

        self.artifacts = telemetry.traced_adapter(self._open_artifacts(), "artifacts")
        worker_queries = WorkerQueries(self.read_models)

        def live_workers_of(template_name: str) -> list[str]:
            # Catch up first: a worker provisioned a moment ago must block the removal.
            self.wait_for_position(self.store.max_position(), self.settings.read_wait_seconds)
            return worker_queries.live_workers_of(template_name)

        self.template_service = TemplateService(self.store, live_workers_of)
        self.definition_service = DefinitionService(self.store, self.artifacts)
        self.worker_service = WorkerService(self.store)

    def _open_artifacts(self):  # noqa: ANN202 - adapters.artifacts.blocking.BlockingArtifactStore
        from adapters.artifacts.blocking import BlockingArtifactStore

        if self.settings.artifacts == "s3":
            from adapters.artifacts.s3 import S3ArtifactStore
            from adapters.artifacts.s3_settings import S3Settings

            overrides = {k: v for k, v in {"bucket": self.settings.s3_bucket,
                                           "endpoint_url": self.settings.s3_endpoint_url}.items() if v}
            return BlockingArtifactStore(S3ArtifactStore(S3Settings(**overrides)))
        from adapters.artifacts.local import LocalArtifactStore

        return BlockingArtifactStore(LocalArtifactStore.in_data_dir(self.settings.data_dir))

    # -- instance API: instances, timelines, the event feed ------------------------------
    def _wire_instance_api(self) -> None:
        from processors.commands.instances import InstanceService
        from projections.readmodels.instances import InstanceQueries
        from projections.readmodels.timeline import TimelineQueries

        self.instance_service = InstanceService(self.store)
        self.instance_queries = InstanceQueries(self.read_models)
        self.timeline_queries = TimelineQueries(self.read_models)
        self._wire_event_streams()

    def _wire_event_streams(self) -> None:
        from api.routes.events import rendered
        from api.streaming.caps import StreamCaps
        from api.streaming.hub import EventHub

        store, settings = self.store, self.settings
        self.event_hub = EventHub(lambda after, limit: store.read_all(after=after, limit=limit),
                                  store.max_position, rendered)
        self.stream_caps = StreamCaps(total=settings.sse_max_streams,
                                      per_caller=settings.sse_max_streams_per_caller)

    def _wire_people(self) -> None:
        from processors.commands.people import PeopleService
        from projections.background_rebuild import BackgroundRebuild

        self.read_model_rebuild = BackgroundRebuild(self.projection_runner.rebuild_all)
        self.people_service = PeopleService(self.store.app.person_keys, self.store, self.read_model_rebuild.request)

    # -- CloudEvents: webhook subscriptions, the dispatcher, incoming events -------------
    def _wire_cloudevents(self) -> None:
        from adapters.webhooks.runtime import WebhookDelivery, open_webhook_store, webhook_egress
        from adapters.webhooks.signing import generate_secret
        from processors.commands.cloudevent_senders import IngestionPolicy
        from processors.commands.cloudevents import CloudEventIntake, ReadModelInbox
        from processors.dispatcher.subscriptions import SubscriptionService
        from projections.readmodels.subscriptions import SubscriptionQueries

        settings = self.settings
        shared = settings.shared_postgres_url()
        webhook_store = open_webhook_store(
            "postgres" if shared else settings.store, sqlite_path=settings.data_dir / "webhooks.sqlite3",
            postgres_url=shared,
        )
        from api.metrics import CountedDeliveryLog, EventCounters

        self.event_counters = EventCounters(self.metrics)  # fed from the log on each scrape
        webhook_store = CountedDeliveryLog(webhook_store, self.metrics)
        self.webhook_log = webhook_store  # pruned by housekeeping (LRM_RETENTION_DAYS)
        egress = webhook_egress(
            allow_http=settings.development, allowed_networks=settings.webhook_allowed_networks.split(","),
            origin=settings.webhook_origin, handshake_timeout=settings.webhook_handshake_timeout,
        )
        # Delivery runs on its own thread and loop (started in start()): never in a request.
        self.webhooks = WebhookDelivery(self.store, webhook_store, source=settings.cloudevents_source,
                                        transport_factory=egress.sender_factory)
        self.subscription_service = SubscriptionService(self.store, generate_secret, validator=egress.validator)
        self.cloudevent_intake = CloudEventIntake(
            self.store,
            ReadModelInbox(self.read_models),
            SubscriptionQueries(self.read_models).instance_for_session,
            catch_up=lambda: self.wait_for_position(self.store.max_position(), settings.read_wait_seconds),
            policy=IngestionPolicy.parse(settings.cloudevent_senders),
        )

    # -- fleet: autoscaler + worker controller over the cloud port (LRM_CLOUD) -----------
    def _wire_fleet(self) -> None:
        from datetime import timedelta

        from domain.scaling import ScalingSettings
        from processors.autoscaler import Autoscaler, AutoscalerSettings
        from processors.workers import WorkerController
        from processors.workers.loop import TickLoop

        settings = self.settings
        self.cloud = telemetry.traced_adapter(self._open_cloud(), "cloud")
        self.autoscaler = Autoscaler(self.store, self.clock, AutoscalerSettings(
            policy=settings.scaling_policy,
            scaling=ScalingSettings(instantiation_lead=timedelta(minutes=settings.instantiation_lead_minutes),
                                    min_warm=settings.min_warm),
            teardown_margin=timedelta(minutes=settings.teardown_margin_minutes),
            interval=timedelta(seconds=30),
        ))
        self.worker_controller = WorkerController(self.store, self.cloud, self.clock, provider_name=settings.cloud)
        # With an injected clock (tests, simulation) the caller drives them with tick().
        run = settings.processors if settings.processors is not None else self._system_clock
        closer = getattr(self.cloud, "aclose", None)
        self.fleet_loops = [
            TickLoop("autoscaler", telemetry.traced("autoscaler.tick", self.autoscaler.tick)
                     if telemetry.enabled() else self.autoscaler.tick, self.store.max_position, interval=1.0),
            TickLoop("worker-controller", telemetry.traced("worker-controller.tick", self.worker_controller.tick)
                     if telemetry.enabled() else self.worker_controller.tick, self.store.max_position,
                     interval=1.0, on_stop=closer),
        ] if run else []

    # -- scheduler: queue, placement, re-placement, instantiation trigger (processors/scheduler)
    def _wire_scheduler(self) -> None:
        from datetime import timedelta

        from processors.scheduler import Scheduler, SchedulerSettings

        settings = self.settings
        self.scheduler = Scheduler(self.store, self.clock, artifacts=self.artifacts, settings=SchedulerSettings(
            instantiation_lead=timedelta(minutes=settings.instantiation_lead_minutes),
            teardown_margin=timedelta(minutes=settings.teardown_margin_minutes),
        ))
        # Like the fleet loops: with an injected clock (tests, simulation) the caller drives
        # it with ``scheduler.run_pass()`` / ``run_until_idle()``.
        self._run_scheduler = settings.processors if settings.processors is not None else self._system_clock
        if telemetry.enabled():  # a span per pass (OTEL_EXPORTER_OTLP_ENDPOINT, api/telemetry.py)
            self.scheduler.run_pass = telemetry.traced("scheduler.pass", self.scheduler.run_pass)  # type: ignore[method-assign]

    def _open_cloud(self):  # noqa: ANN202 - processors.ports.cloud.CloudProvider
        if self.settings.cloud == "ec2":
            from adapters.cloud.ec2 import Ec2Cloud

            return Ec2Cloud()  # LRM_AWS_* settings; its client lives on the controller's loop
        from adapters.cloud.simulated import SimulatedCloud

        return SimulatedCloud(self.clock, time_scale=self.settings.time_scale,
                              failure_probability=self.settings.cloud_failure_rate)

    # -- instance controller: instances driven on CML (processors/instances, LRM_CML) -----
    def _wire_instance_controller(self) -> None:
        from datetime import timedelta

        from adapters.cml.settings import CmlSettings, build_cml_gateway, endpoint_for_worker
        from processors.instances import InstanceController, LifecycleSettings
        from processors.instances.runner import InstanceControllerThread

        settings = self.settings
        cml_settings = CmlSettings(adapter=settings.cml)
        if settings.time_scale != 1 and "sim_time_scale" not in cml_settings.model_fields_set:
            cml_settings = cml_settings.model_copy(update={"sim_time_scale": 1 / settings.time_scale})
        self.lifecycle_settings = LifecycleSettings(
            instantiation_lead=timedelta(minutes=settings.instantiation_lead_minutes),
        ).with_timeouts(settings.lifecycle_timeouts)

        def build() -> InstanceController:  # runs on the controller's own loop (the CML client's)
            self.cml_gateway = build_cml_gateway(cml_settings)  # kept for its controller_status()
            controller = InstanceController(
                self.store, telemetry.traced_adapter(self.cml_gateway, "cml"), self.artifacts,
                self.clock,
                lambda worker_id, ip: endpoint_for_worker(cml_settings, worker_id, ip),
                settings=self.lifecycle_settings, checkpoints=self.read_models,
            )
            if telemetry.enabled():
                controller.run_pass = telemetry.traced("instances.pass", controller.run_pass)  # type: ignore[method-assign]
            controller.lab_reconciler = self._lab_reconciler(  # type: ignore[attr-defined]
                controller.cml, lambda worker_id, ip: endpoint_for_worker(cml_settings, worker_id, ip))
            return controller

        async def close_cml(controller: InstanceController) -> None:
            aclose = getattr(controller.cml, "aclose", None)
            if aclose is not None:
                await aclose()

        # Like the fleet loops: with an injected clock (tests, simulation) the caller drives it,
        # building one with ``build_instance_controller()`` and awaiting its ``run_pass()``.
        self.build_instance_controller = build
        run = settings.processors if settings.processors is not None else self._system_clock
        self.instance_controller = InstanceControllerThread(build, on_stop=close_cml) if run else None

    # -- classroom: extend a lab, the overrun watcher (processors/commands/extension.py) --
    def _wire_classroom(self) -> None:
        from datetime import timedelta

        from processors.commands.classes import ClassService
        from processors.commands.extension import ExtensionService, ExtensionSettings
        from processors.commands.quotas import QuotaService
        from processors.overrun import OverrunSettings, OverrunWatcher
        from processors.pruning import Pruner
        from processors.workers.loop import TickLoop
        from projections.readmodels.instances import live_bookings, overrunning
        from projections.readmodels.workers import WorkerQueries

        settings = self.settings
        worker_queries = WorkerQueries(self.read_models)

        def live_workers() -> list[str]:
            # Catch up first: a worker provisioned a moment ago can take a moved lab or a seat
            # (only where this process keeps the read models; elsewhere another process does).
            if self.keeps_read_models:
                self.wait_for_position(self.store.max_position(), settings.read_wait_seconds)
            found: list[str] = []
            cursor: str | None = None
            while True:
                page = worker_queries.list(live=True, limit=500, cursor=cursor)
                found.extend(str(w["id"]) for w in page.items)
                if not page.next_cursor:
                    return found
                cursor = page.next_cursor

        self.live_worker_ids = live_workers
        self.extension_service = ExtensionService(self.store, live_workers, ExtensionSettings(
            instantiation_lead=timedelta(minutes=settings.instantiation_lead_minutes),
            teardown_margin=timedelta(minutes=settings.teardown_margin_minutes),
        ))
        self.quota_service = QuotaService(self.store, lambda subject, members: live_bookings(
            self.instance_queries, subject, members))
        self.instance_service.quota = self.quota_service
        self.extension_service.quota = self.quota_service
        self.class_service = ClassService(
            self.store, self.instance_service, self.extension_service, live_workers,
            instantiation_lead=timedelta(minutes=settings.instantiation_lead_minutes),
            teardown_margin=timedelta(minutes=settings.teardown_margin_minutes),
        )
        self.overrun_watcher = OverrunWatcher(
            self.extension_service, lambda horizon: overrunning(self.instance_queries, horizon), self.clock,
            OverrunSettings(step=timedelta(minutes=settings.teardown_margin_minutes)),
        )
        self.pruner = Pruner({"webhook_attempts": self.webhook_log.prune_attempts,
                              "cloudevent_inbox": self.cloudevent_intake.inbox.prune},
                             timedelta(days=settings.retention_days), self.clock)
        # Housekeeping (overrun, pruning) runs like the fleet loops: with an injected clock the
        # caller drives it with ``housekeeping_tick()``.
        run = settings.processors if settings.processors is not None else self._system_clock
        # On the clock only (head fixed): the overrun looks 5 minutes ahead and pruning is hourly,
        # so a tick every 30 s is enough and a busy log does not make it scan more often.
        self.housekeeping_loop = TickLoop("housekeeping", self.housekeeping_tick, lambda: 0,
                                          interval=30.0) if run else None

    def housekeeping_tick(self) -> None:
        self.overrun_watcher.tick()
        self.pruner.tick()

    def _lab_reconciler(self, cml: Any, endpoint_for: Callable[[str, str], Any]):  # noqa: ANN202
        """Unowned CML labs removed after a grace period (processors/reconciler)."""
        from datetime import timedelta

        from processors.reconciler import LabReconciler
        from projections.readmodels.instances import placed_on

        return LabReconciler(self.store, cml, endpoint_for, self.live_worker_ids,
                             lambda worker_id: placed_on(self.instance_queries, worker_id),
                             grace=timedelta(minutes=self.settings.orphan_lab_grace_minutes))

    def seed_quotas(self) -> list[str]:
        """The quotas of the seed file, while no admin has set any."""
        from domain.context import CommandContext
        from ruamel.yaml import YAML

        path = self.settings.quotas_file
        if not path.is_file():
            return []
        entries = (YAML(typ="safe").load(path.read_text()) or {}).get("quotas") or []
        ctx = CommandContext(at=self.clock.now(), actor="system:seed", causation_id=f"seed:{path.name}")
        seeded = self.quota_service.seed(list(entries), ctx)
        if seeded:
            log.info("quotas_seeded", subjects=seeded, path=str(path))
        return seeded

    def seed_worker_templates(self) -> list[str]:
        """Create the templates of the seed file whose names are unknown (never overwrite)."""
        from domain.context import CommandContext
        from domain.worker_template import parse_templates_yaml

        path = self.settings.worker_templates_file
        if not path.is_file():
            return []
        ctx = CommandContext(at=self.clock.now(), actor="system:seed", causation_id=f"seed:{path.name}")
        created = self.template_service.seed(parse_templates_yaml(path.read_text()), ctx)
        if created:
            log.info("worker_templates_seeded", names=created, path=str(path))
        return created

    # -- demo data (LRM_DEMO=1, api/demo.py) and where to look ------------------------
    def _seed_demo(self) -> None:
        from api.demo import seed_demo, start_banner

        if self.settings.demo:
            try:
                seeded = seed_demo(self)
                log.info("demo_seeded", definitions=seeded.definitions, booked=len(seeded.instance_ids),
                         already_booked=seeded.already_booked)
            except Exception:  # noqa: BLE001 - a broken demo must not keep the service down
                log.exception("demo_seed_failed")
        if self._system_clock:
            print(start_banner(self), file=sys.stderr, flush=True)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.tokens_path is not None:
            log.info("api_tokens_generated", path=str(self.tokens_path))
        if self.settings.seed if self.settings.seed is not None else "api" in self.roles:
            self.seed_worker_templates()
            self.seed_quotas()
            self._seed_demo()
        if self.follows_projections:
            self.projection_runner.start()
        elif "api" in self.roles:  # reads what another process's runner keeps
            self.read_models.ensure_tables([t for p in self.projection_runner.projections for t in p.tables])
        for role, component in self._processors().items():
            if role in self.roles:
                self._start_leased(role, component)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for guard in self.leases:
            guard.stop()
        self.scheduler.stop()
        for loop in self.fleet_loops:
            loop.stop()
        if self.instance_controller is not None:
            self.instance_controller.stop()
        if self.housekeeping_loop is not None:
            self.housekeeping_loop.stop()
        self.webhooks.close()
        self.projection_runner.stop()
        self.close()

    def close(self) -> None:
        """Release the stores (also for a container that was never started, e.g. the CLI)."""
        if self._closed:
            return
        self._closed = True
        self.read_models.close()
        self.artifacts.close()
        self.store.close()

    # -- roles and leases (api/roles.py, adapters/lease) ---------------------------------
    def _processors(self) -> dict[str, Any]:
        """The startable process managers by role (those this configuration runs at all)."""
        found: dict[str, Any] = {"dispatcher": self.webhooks}
        if self._run_scheduler:
            found["scheduler"] = self.scheduler
        for loop in self.fleet_loops:
            found["autoscaler" if loop.name == "autoscaler" else "workers"] = loop
        if self.instance_controller is not None:
            found["instances"] = self.instance_controller
        if self.housekeeping_loop is not None:
            found["housekeeping"] = self.housekeeping_loop
        return found

    def _start_leased(self, role: str, component: Any) -> None:
        """Shared stores: start under the role's lease (one active replica). Local stores
        (one process): start now, as before."""
        url = self.settings.shared_postgres_url()
        if not url:
            component.start()
            return
        from adapters.lease import LeasedComponent, PostgresLease

        def changed(name: str, active: bool) -> None:
            log.info("lease_changed", lease=name, active=active)
            self.metrics.lease_active.labels(name).set(1 if active else 0)

        interval = self.settings.lease_retry_seconds
        guard = LeasedComponent(PostgresLease(url, role), component, retry_interval=interval,
                                check_interval=interval, on_change=changed)
        self.leases.append(guard)
        guard.start()

    def lease_status(self) -> dict[str, str]:
        """Role → "active" (this replica leads), "standby", or "local" (no lease needed)."""
        status = {role: "local" for role in self._processors() if role in self.roles and self._started}
        for guard in self.leases:
            status[guard.name] = "active" if guard.active else "standby"
        return status

    # -- health ----------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        """Ready: the event store answers, and every read model this process keeps is
        followed, not more than ``ready_max_lag`` events behind, with no parked event."""
        checks: dict[str, Any] = {}
        try:
            self.store.ping()
            checks["event_store"] = {"ok": True, "position": self.store.max_position()}
        except Exception as error:  # noqa: BLE001 - readiness reports any failure
            checks["event_store"] = {"ok": False, "error": str(error)}
        try:
            checks["projections"] = {row["name"]: row for row in self.projection_status()}
        except Exception as error:  # noqa: BLE001 - e.g. the read-model database is down
            checks["projections"] = {"read_models": {"ok": False, "error": str(error)}}
        checks["cml"] = self.cml_status()
        ready = checks["event_store"]["ok"] and all(
            row.get("ok", True) for row in checks["projections"].values()
        )
        return {"ready": ready, "checks": checks}

    def cml_status(self) -> dict[str, Any]:
        """Each worker's CML controller as last checked (version, ready, problem); informational:
        one controller too old or still booting does not make this process unready."""
        status = getattr(getattr(self, "cml_gateway", None), "controller_status", None)
        return {worker: entry.as_dict() for worker, entry in status().items()} if status else {}

    @property
    def follows_projections(self) -> bool:
        """This process runs a projection runner (role projections, or api unless another
        process keeps the read models: ``LRM_API_RUNS_PROJECTIONS=false``)."""
        return "projections" in self.roles or ("api" in self.roles and self.settings.api_runs_projections)

    @property
    def keeps_read_models(self) -> bool:
        """This process reads (api) or writes (projections) the read models."""
        return bool(self.roles & {"api", "projections"})

    def projection_status(self) -> list[dict[str, Any]]:
        """Per read model: position, lag, parked events, a shadow rebuild's progress, ``ok``."""
        if not self.keeps_read_models:
            return []  # a processor-only process runs no projections: nothing to report
        if not self.follows_projections:
            return self._checkpoint_status()
        from projections.parking import parked_counts

        runner = self.projection_runner
        head = self.store.max_position()
        following = runner.running or not self._started
        parked = parked_counts(self.read_models)
        rebuilding = runner.rebuilding()
        rows = []
        for p in runner.projections:
            lag = max(0, head - runner.position(p.name))
            row: dict[str, Any] = {"name": p.name, "version": p.version, "position": runner.position(p.name),
                                   "lag": lag, "parked": parked.get(p.name, 0) + parked.get(f"{p.name}__shadow", 0)}
            problems = []
            if not following:
                problems.append("not followed (runner stopped)")
            if row["parked"]:
                problems.append(f"{row['parked']} parked event(s)")
            if p.name in rebuilding:
                row["rebuild"] = rebuilding[p.name]
            if self._started and not runner.is_followed(p.name):
                problems.append("rebuilding: serving the previous model" if p.name in rebuilding
                                else "not followed by this version")
            elif lag > self.settings.ready_max_lag and self._started:
                problems.append(f"lag {lag} > {self.settings.ready_max_lag}")
            row["ok"] = not problems
            if problems:
                row["problems"] = problems
            rows.append(row)
        return rows

    def _checkpoint_status(self) -> list[dict[str, Any]]:
        """An api process without its own runner: what the stored checkpoints say."""
        from projections.parking import parked_counts

        head = self.store.max_position()
        stored = self.read_models.checkpoints()
        parked = parked_counts(self.read_models)
        rows = []
        for p in self.projection_runner.projections:
            checkpoint = stored.get(p.name)
            position = checkpoint.position if checkpoint else 0
            row: dict[str, Any] = {"name": p.name, "version": p.version, "position": position,
                                   "lag": max(0, head - position),
                                   "parked": parked.get(p.name, 0) + parked.get(f"{p.name}__shadow", 0)}
            problems = []
            if row["parked"]:
                problems.append(f"{row['parked']} parked event(s)")
            if checkpoint is None or checkpoint.version != p.version:
                problems.append("rebuilding or not built yet (by the projections process)")
            elif row["lag"] > self.settings.ready_max_lag:
                problems.append(f"lag {row['lag']} > {self.settings.ready_max_lag}")
            row["ok"] = not problems
            if problems:
                row["problems"] = problems
            rows.append(row)
        return rows

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """Read-your-writes: True once every read model has applied ``position``."""
        if not self.projection_runner.projections:
            return True
        if not self.follows_projections:
            from projections.checkpoint import wait_for_checkpoint

            stored = self.read_models.checkpoints()  # models that are rebuilding are not waited for
            names = [p.name for p in self.projection_runner.projections
                     if p.name in stored and stored[p.name].version == p.version]
            return wait_for_checkpoint(self.read_models, names, position, timeout)
        return self.projection_runner.wait_for_position(position, timeout)

    def refresh_gauges(self) -> None:
        for row in self.projection_status():
            self.metrics.projection_lag.labels(row["name"]).set(row["lag"])
            self.metrics.projection_parked.labels(row["name"]).set(row["parked"])
            self.metrics.projection_rebuild_remaining.labels(row["name"]).set(
                row["rebuild"]["remaining"] if "rebuild" in row else 0)
        # The read-model tables exist once a runner (this process's or an API replica's) prepared them.
        if self._started and self.keeps_read_models:
            for state, count in self.instance_queries.count_by_state().items():
                self.metrics.instances_by_state.labels(state).set(count)
            self._refresh_worker_gauges()
        try:
            self.event_counters.feed(self.store)
        except Exception:  # noqa: BLE001 - a scrape must not fail on a slow store
            log.exception("event_counters_failed")

    def _refresh_worker_gauges(self) -> None:
        from collections import Counter

        from projections.readmodels.workers import WorkerQueries

        counts: Counter[tuple[str, str]] = Counter()
        queries, cursor = WorkerQueries(self.read_models), None
        while True:
            page = queries.list(limit=500, cursor=cursor)
            counts.update((str(w.get("state")), str(w.get("template_name"))) for w in page.items)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        self.metrics.workers_by_state.clear()  # a state no worker is in any more reads 0 (absent)
        for (state, template), count in counts.items():
            self.metrics.workers_by_state.labels(state, template).set(count)

    def rebuild_projections(
        self, name: str | None = None, progress: Callable[[int, int], None] | None = None,
        *, processes: int = 1,
    ) -> int:
        """Rebuild one read model (or all) in a shadow copy and switch over; returns the number
        of events replayed. ``processes`` > 1 rebuilds groups of read models side by side
        (projections/parallel.py; not for the in-memory store, which one process holds)."""
        known = [p.name for p in self.projection_runner.projections]
        if name is not None and name not in known:
            raise ValueError(f"unknown projection {name!r}; known: {', '.join(known)}")
        if processes > 1 and name is None and self.settings.store != "memory":
            from functools import partial

            from projections.parallel import rebuild_in_processes

            self.projection_runner.prepare()  # tables and checkpoints exist before the workers start
            return rebuild_in_processes(partial(open_stores_for_rebuild, self.settings.model_dump(mode="json")),
                                        self.projection_runner.projections, processes, progress=progress)
        if name is None:
            return self.projection_runner.rebuild_all(progress)
        return self.projection_runner.rebuild(name, progress)


def open_stores_for_rebuild(settings: dict[str, Any]) -> tuple[Any, Any, list[Projection]]:
    """In a rebuild worker process: the event store, read models and projections of ``settings``."""
    container = Container(Settings(**settings), roles=frozenset({"projections"}))
    return container.store, container.read_models, container.projection_runner.projections

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
