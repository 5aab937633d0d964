"""Fixtures for the deployment tests: a fresh PostgreSQL database and `lablet serve` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import postgres_url_or_skip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own (advisory locks and tables are per database), dropped afterwards."""
    import psycopg

    server = postgres_url_or_skip()
    name = f"lrm_deploy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """One ``lablet serve --role ...`` OS process."""

    name: str
    roles: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Cluster:
    env: dict[str, str]
    workdir: Path
    processes: list[Served] = field(default_factory=list)

    def serve(self, name: str, roles: str) -> Served:
        port = free_port()
        data_dir = self.workdir / name
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / f"{name}.log"
        env = {**self.env, "LRM_PORT": str(port), "LRM_DATA_DIR": str(data_dir)}
        command = [sys.executable, "-m", "api.cli", "serve", *[a for r in roles.split() for a in ("--role", r)]]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        served = Served(name, roles, port, process, log_path)
        self.processes.append(served)
        return served

    def wait_healthy(self, served: Served, timeout: float = 120.0) -> None:
        """Start-up is mostly imports: seconds alone, much longer on a loaded 2-core runner."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert served.alive(), f"{served.name} exited:\n{served.log_tail()}"
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{served.name} not healthy in {timeout}s:\n{served.log_tail()}")

    def stop_all(self) -> None:
        for served in self.processes:
            if served.alive():
                served.process.send_signal(signal.SIGTERM)
        for served in self.processes:
            try:
                served.process.wait(10)
            except subprocess.TimeoutExpired:
                served.kill()


@pytest.fixture
def cluster(postgres_database: str, tmp_path: Path) -> Iterator[Cluster]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PYTHONPATH": str(ROOT),
        "LRM_HOST": "127.0.0.1",
        "LRM_STORE": "postgres",
        "LRM_STORE_URL": postgres_database,
        "LRM_TOKENS": "admin:adm,instructor:ins,user:usr:alice,user:usr2:bob,grader:grd,service:svc:exam",
        "LRM_LOG_FORMAT": "json",
        "LRM_PROCESSORS": "true",
        "LRM_TIME_SCALE": "600",  # a 20 min simulated boot takes 2 s
        "LRM_LEASE_RETRY_SECONDS": "1",
        "LRM_INSTANTIATION_LEAD_MINUTES": "0",
    }
    # OTEL_EXPORTER_OTLP_ENDPOINT=... runs the same test with tracing on in every process.
    env.update({k: v for k, v in os.environ.items() if k.startswith("OTEL_")})
    running = Cluster(env, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()
