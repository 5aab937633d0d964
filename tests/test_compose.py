"""docker-compose.yml and the Dockerfile, checked against what the app really reads.

No Docker engine here: the compose file is parsed (with its YAML anchors and merge keys)
and every LRM service is checked for a command the CLI accepts, a port the app listens
on, a health check, and environment variables that some settings class reads and that
validate.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML

from adapters.artifacts.s3_settings import S3Settings
from adapters.cloud.ec2_settings import Ec2Settings
from adapters.cml.settings import CmlSettings
from api.cli import cli
from api.roles import PROCESSOR_ROLES, ROLES, parse_roles
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_CLASSES = (Settings, S3Settings, Ec2Settings, CmlSettings)
INFRASTRUCTURE = {"eventstoredb", "postgres", "minio", "moto"}


def load_compose() -> dict[str, Any]:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LRM_SERVICES = {name: s for name, s in SERVICES.items() if name not in INFRASTRUCTURE}


def known_env_names() -> set[str]:
    names = set()
    for settings_class in SETTINGS_CLASSES:
        prefix = settings_class.model_config.get("env_prefix", "")
        names.update(f"{prefix}{field}".upper() for field in settings_class.model_fields)
    return names


def roles_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--role"]


def published_container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(port).split(":")[-1].split("/")[0]) for port in service.get("ports", [])}


def test_the_infrastructure_is_there() -> None:
    assert INFRASTRUCTURE <= set(SERVICES)
    assert SERVICES["eventstoredb"]["image"].startswith("eventstore/eventstore:")
    assert SERVICES["eventstoredb"]["environment"]["EVENTSTORE_INSECURE"] == "true"
    assert SERVICES["moto"].get("profiles") == ["fake-aws"], "moto is optional"


def test_every_role_has_a_service() -> None:
    served = {role for service in LRM_SERVICES.values() for role in roles_of(service)}
    assert served >= set(ROLES)


@pytest.mark.parametrize("name", sorted(LRM_SERVICES))
def test_the_command_is_one_the_cli_accepts(name: str) -> None:
    service = LRM_SERVICES[name]
    command = service["command"]
    assert command[0] == "serve"
    serve = typer.main.get_command(cli).commands["serve"]  # type: ignore[attr-defined]
    options = {opt for param in serve.params for opt in param.opts}
    assert {arg for arg in command[1:] if arg.startswith("--")} <= options
    roles = roles_of(service)
    assert roles and parse_roles(roles) <= set(ROLES)


@pytest.mark.parametrize("name", sorted(LRM_SERVICES))
def test_environment_is_read_by_the_app_and_validates(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: str(v) for k, v in LRM_SERVICES[name]["environment"].items()}
    unknown = {k for k in env if k.startswith("LRM_")} - known_env_names()
    assert not unknown, f"{name}: nobody reads {sorted(unknown)}"
    assert {k for k in env if not k.startswith(("LRM_", "OTEL_"))} == set()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    for settings_class in SETTINGS_CLASSES[1:]:
        settings_class()  # raises on a value the adapter would refuse
    if settings.store == "esdb":  # what the container demands of a split deployment
        assert settings.esdb_uri.startswith("esdb://") and settings.readmodel_url.startswith("postgresql://")
        host = re.match(r"esdb://([^:/?]+)", settings.esdb_uri).group(1)  # type: ignore[union-attr]
        assert host in SERVICES
    shared = settings.shared_postgres_url()
    assert shared, "replicas share read models, webhooks and leases through PostgreSQL"
    assert re.match(r"postgresql://[^@]+@([^:/]+)", shared).group(1) in SERVICES  # type: ignore[union-attr]
    if settings.artifacts == "s3":
        assert S3Settings().endpoint_url == "http://minio:9000" or "LRM_AWS_ENDPOINT_URL" in env


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_health_check(name: str) -> None:
    check = SERVICES[name].get("healthcheck")
    assert check and check["test"][0] in ("CMD", "CMD-SHELL")


@pytest.mark.parametrize("name", sorted(LRM_SERVICES))
def test_lrm_health_check_and_ports_match_the_port_the_app_listens_on(name: str) -> None:
    service = LRM_SERVICES[name]
    port = int(service["environment"]["LRM_PORT"])
    assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
    assert service["environment"]["LRM_HOST"] == "0.0.0.0"
    assert published_container_ports(service) <= {port}
    if "api" in roles_of(service):
        assert published_container_ports(service) == {port}


def test_dependencies_exist_and_report_health() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if condition.get("condition") == "service_healthy":
                assert SERVICES[dependency].get("healthcheck"), f"{dependency} has no health check"


def test_processor_roles_can_run_replicas() -> None:
    """Each processor role is its own service (so it can be scaled); the scheduler has two."""
    for role in PROCESSOR_ROLES:
        assert any(roles_of(s) == [role] for s in LRM_SERVICES.values()), role
    assert LRM_SERVICES["scheduler"]["deploy"]["replicas"] >= 2


def test_the_dockerfile_is_slim_non_root_and_healthchecked() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert re.search(r'^ENTRYPOINT \["lablet"\]', dockerfile, re.M)
    exposed = {int(p) for p in re.findall(r"^EXPOSE (\d+)", dockerfile, re.M)}
    assert exposed == {int(s["environment"]["LRM_PORT"]) for s in LRM_SERVICES.values()}
    for package in ("domain", "projections", "processors", "adapters", "api"):
        assert re.search(rf"^COPY {package} ", dockerfile, re.M), package
