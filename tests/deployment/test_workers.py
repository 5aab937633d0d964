"""``lablet serve --workers 2`` on SQLite: two API processes and one for projections and processors.

Every booking is read back with ``min_position`` from whichever API process answers:
read-your-writes holds across processes (they wait on the checkpoints the projections
process commits), and the projections process reports its own health on port + 1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_templates_support import definition_body
from tests.deployment.conftest import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

API = "/api/v1"
ADMIN = {"Authorization": "Bearer adm"}
ALICE = {"Authorization": "Bearer usr"}


def two_free_ports() -> int:
    """A port whose successor is free too (the projections process answers on port + 1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def test_two_api_processes_read_their_writes(tmp_path: Path) -> None:
    port = two_free_ports()
    env = {**os.environ, "LRM_DATA_DIR": str(tmp_path), "LRM_TOKENS": "admin:adm,user:usr:alice",
           "LRM_PORT": str(port), "LRM_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "serve.log").open("w")
    served = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--workers", "2"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 150  # four Python processes start on a loaded machine
            while time.monotonic() < deadline:
                try:
                    if http.get("/readyz").status_code == 200 and httpx.get(
                            f"http://127.0.0.1:{port + 1}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            else:
                raise AssertionError("not ready in time:\n" + (tmp_path / "serve.log").read_text()[-3000:])
            assert http.post(f"{API}/definitions", json=definition_body(), headers=ADMIN).status_code == 201
            for n in range(12):
                booked = http.post(f"{API}/instances", headers={**ALICE, "Idempotency-Key": f"k-{n}"},
                                   json={"definition": "ccna-basic-routing", "duration_minutes": 30})
                assert booked.status_code == 201, booked.text
                body = booked.json()
                read = http.get(f"{API}/instances/{body['id']}", params={"min_position": body["position"]},
                                headers=ALICE)
                assert read.status_code == 200, read.text
            listed = http.get(f"{API}/instances", params={"limit": 50}, headers=ALICE).json()["items"]
            assert len(listed) == 12
    finally:
        os.killpg(served.pid, signal.SIGTERM)
        try:
            served.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(served.pid, signal.SIGKILL)
        log.close()
