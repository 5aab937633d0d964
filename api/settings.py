"""Settings from environment variables with the prefix ``LRM_`` (documented in README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("var")
    store: Literal["sqlite", "postgres", "memory", "esdb"] = "sqlite"
    store_url: str = Field(
        "",
        description="SQLite file path (default $LRM_DATA_DIR/events.sqlite3) or a PostgreSQL URL",
    )
    # Split deployments (docs/operations): EventStoreDB for the log, PostgreSQL for the rest.
    esdb_uri: str = Field("", description="LRM_STORE=esdb: esdb://host:2113?Tls=false")
    readmodel_url: str = Field(
        "", description="PostgreSQL URL for read models, checkpoints, webhooks and leases "
                        "(required with LRM_STORE=esdb; defaults to LRM_STORE_URL with postgres)",
    )
    roles: str = Field("all", description="process roles, comma-separated (api/roles.py); --role overrides")
    lease_retry_seconds: float = Field(2.0, gt=0, le=30, description="standby replicas try the lease this often")
    otel_service_name: str = Field("lablet-resource-manager", description="OpenTelemetry service.name")
    tokens: str = Field("", description="comma-separated role:token[:subject]; generated when empty")
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    read_wait_seconds: float = Field(2.0, ge=0, le=30, description="max wait for min_position")
    ready_max_lag: int = Field(
        10_000, ge=0, description="/readyz is not ready while a followed read model is more events behind")
    sse_max_streams: int = Field(200, ge=1, le=100_000, description="open /events/stream streams per process (503)")
    sse_max_streams_per_caller: int = Field(5, ge=1, le=10_000, description="open streams per token subject (429)")
    instantiation_lead_minutes: int = Field(15, ge=0)
    teardown_margin_minutes: int = Field(30, ge=0)
    cloudevents_source: str = "urn:lrm:local"
    # Webhooks and CloudEvents (docs/cloudevents.md, docs/operations/security.md).
    development: bool = Field(False, description="development mode: http:// webhook URLs are allowed")
    webhook_allowed_networks: str = Field(
        "", description="comma-separated CIDRs webhooks may reach although internal (e.g. 127.0.0.0/8 in tests); "
                        "loopback, link-local, private and metadata addresses are refused otherwise",
    )
    webhook_origin: str = Field(
        "", description="WebHook-Request-Origin we send (a DNS name for this deployment); default: the host name",
    )
    webhook_handshake_timeout: float = Field(10.0, gt=0, le=60, description="seconds for the OPTIONS handshake")
    cloudevents_allowed_origins: str = Field(
        "*", description="as a web hook target: comma-separated WebHook-Request-Origin values we grant, or *",
    )
    cloudevents_allowed_rate: str = Field(
        "*", pattern=r"^(\*|[1-9][0-9]*)$", description="WebHook-Allowed-Rate we grant (requests per minute) or *",
    )
    cloudevent_senders: list[dict[str, Any]] = Field(
        default_factory=list,
        description='JSON bindings of incoming event types/sources/definitions to senders: '
                    '[{"types": ["lds.session.*"], "sources": ["urn:lds:prod"], "senders": ["service:lds"]}]',
    )
    cloudevent_sender_secrets: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"grader:acme": "whsec_..."}: requests from these senders must be signed (Standard Webhooks)',
    )
    demo: bool = False
    time_scale: float = Field(
        1.0, gt=0, description="simulated cloud/CML speed-up: 60 = a 20 min boot takes 20 s"
    )
    # Fleet: cloud provider and the background process managers (autoscaler, worker controller).
    cloud: Literal["simulated", "ec2"] = "simulated"
    cloud_failure_rate: float = Field(0.0, ge=0, le=1, description="simulated cloud: chance a boot fails")
    scaling_policy: Literal["default", "reactive", "static"] = "default"
    min_warm: dict[str, int] = Field(
        default_factory=dict, description='RUNNING workers kept per template, JSON: {"personal-standard": 1}'
    )
    processors: bool | None = Field(
        None, description="run the autoscaler and worker controller; default: only on the system clock"
    )
    # Serving from several processes (lablet serve --workers N, docs/operations/deployment.md).
    workers: int = Field(1, ge=1, le=64, description="API processes of lablet serve (uvicorn workers)")
    api_runs_projections: bool = Field(
        True, description="an api-only process runs its own projection runner; false: it reads the "
                          "checkpoints another process (role projections) keeps")
    seed: bool | None = Field(None, description="seed worker templates (and the demo) at start; default: "
                                                "in processes with the api role")
    public_port: int | None = Field(None, ge=0, le=65535,
                                    description="the port the dashboard is served on when it differs from "
                                                "port (the projections process of lablet serve --workers N)")
    # Artifact store (lab YAML, evidence): a directory under data_dir, or S3 (other LRM_S3_* too).
    artifacts: Literal["local", "s3"] = "local"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    # Instance controller (processors/instances): which CML to drive, stuck-state timeouts.
    cml: Literal["simulated", "rest"] = Field("simulated", description="CML adapter; LRM_CML_* tune it")
    lifecycle_timeouts: dict[str, float] = Field(
        default_factory=dict,
        description='stuck-state timeouts in minutes by state, JSON: {"READY": 30, "GRADING": 60}',
    )
    worker_templates_file: Path = Field(
        Path(__file__).resolve().parents[1] / "config" / "worker-templates.yaml",
        description="seeded at start-up: unknown names are created, existing ones never overwritten",
    )
    quotas_file: Path = Field(
        Path(__file__).resolve().parents[1] / "config" / "quotas.yaml",
        description="quotas seeded at start-up while no admin has set any (admin edits win)",
    )
    #: an edit of an existing template or subscription needs If-Match (428 without it)
    require_if_match: bool = True
    #: a CML lab no instance owns is removed this long after it was first seen
    orphan_lab_grace_minutes: int = Field(30, ge=0, le=7 * 24 * 60)
    #: how long bookkeeping rows (delivery attempts, the CloudEvents dedup inbox) are kept
    retention_days: int = Field(30, ge=1, le=3650)

    @field_validator("store_url", "esdb_uri", "readmodel_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def sqlite_path(self) -> Path:
        return Path(self.store_url) if self.store_url else self.data_dir / "events.sqlite3"

    def shared_postgres_url(self) -> str:
        """PostgreSQL shared by replicas (read models, webhooks, leases); "" for local stores."""
        if self.readmodel_url:
            return self.readmodel_url
        return self.store_url if self.store == "postgres" else ""

    def readmodel_sqlite_path(self) -> Path:
        return self.data_dir / "readmodels.sqlite3"
