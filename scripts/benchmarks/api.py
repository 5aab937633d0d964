"""HTTP API under load: a real ``lablet serve`` (uvicorn, SQLite, processors on) on loopback,
driven by an httpx async load generator bounded in time and in requests.

    scripts/bench api [--concurrency 16] [--seconds 10] [--max-requests 5000] [--quick] [--tiny] [--json]

Per operation: p50/p95/p99 latency (ms) and requests/s at the given concurrency, and the
ratio of p95 to the baseline ``GET /healthz`` measured in the same run (what the server and
the client cost before any of our code runs). Operations:

- reads: ``GET /api/v1/instances?limit=50`` (a list from a read model), ``GET /api/v1/workers``,
  ``GET /api/v1/instances/{id}`` (one instance, read-your-writes not requested);
- commands: ``POST /api/v1/instances`` (a booking tomorrow, by the exam service; 201 with
  the resulting position).

SPEC §10 targets: p95 < 50 ms reads, < 100 ms commands (seed requirement: 500 ms).
The server runs in its own process so the generator does not share its GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "samples" / "ccna-basic-routing"
TOKENS = "admin:adm,service:svc:exam,user:usr:alice"
ADMIN = {"Authorization": "Bearer adm"}
SERVICE = {"Authorization": "Bearer svc"}
API = "/api/v1"
console = Console(width=110)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LRM_DATA_DIR": str(data_dir), "LRM_STORE": "sqlite", "LRM_TOKENS": TOKENS,
           "LRM_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /healthz in time")


def publish(base: str) -> None:
    body = dict(YAML(typ="safe").load((SAMPLE / "definition.yaml").read_text()))
    body.pop("lab_yaml")
    body["version"] = str(body["version"])
    body["lab_yaml"] = (SAMPLE / "lab.yaml").read_text()
    response = httpx.post(f"{base}{API}/definitions", json=body, headers=ADMIN, timeout=30)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"publishing the definition: {response.status_code} {response.text}")


def booking(number: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1, minutes=number % 600)
    return {"definition": "ccna-basic-routing", "owner_id": f"student-{number}",
            "timeslot_start": start.isoformat(), "timeslot_end": (start + timedelta(minutes=60)).isoformat()}


async def load(base: str, name: str, make: Any, *, concurrency: int, seconds: float, max_requests: int,
               ) -> dict[str, Any]:
    """``concurrency`` workers issue requests back to back until time or count runs out."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        async def worker() -> None:
            nonlocal issued, errors
            while time.perf_counter() < deadline and issued < max_requests:
                number = issued
                issued += 1
                method, path, kwargs = make(number)
                began = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                latencies.append((time.perf_counter() - began) * 1000)
                if response.status_code >= 400:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [float("nan")]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]

    return {"operation": name, "requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per operation")
    parser.add_argument("--max-requests", type=int, default=5000, help="per operation")
    parser.add_argument("--quick", action="store_true", help="5 s and 1 000 requests per operation")
    parser.add_argument("--tiny", action="store_true", help="1 s and 50 requests per operation (CI smoke)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.max_requests = min(args.seconds, 5.0), min(args.max_requests, 1000)
    if args.tiny:
        args.seconds, args.max_requests, args.concurrency = 1.0, 50, min(args.concurrency, 4)
    with tempfile.TemporaryDirectory(prefix="lrm-bench-api-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp), port)
        try:
            wait_ready(base, server)
            publish(base)
            # Something to read: a first batch of bookings.
            seed = asyncio.run(load(base, "seed", lambda n: ("POST", f"{API}/instances",
                                                             {"json": booking(n), "headers": SERVICE}),
                                    concurrency=4, seconds=30, max_requests=max(20, args.max_requests // 10)))
            first = httpx.get(f"{base}{API}/instances?limit=1", headers=ADMIN, timeout=10).json()["items"]
            one = first[0]["id"] if first else "none"
            counter = iter(range(10**9, 2 * 10**9))
            operations = [
                ("GET /healthz (baseline)", lambda n: ("GET", "/healthz", {})),
                ("GET /instances?limit=50", lambda n: ("GET", f"{API}/instances?limit=50", {"headers": ADMIN})),
                ("GET /workers", lambda n: ("GET", f"{API}/workers", {"headers": ADMIN})),
                ("GET /instances/{id}", lambda n: ("GET", f"{API}/instances/{one}", {"headers": ADMIN})),
                ("POST /instances", lambda n: ("POST", f"{API}/instances",
                                               {"json": booking(next(counter)), "headers": SERVICE})),
            ]
            rows = [asyncio.run(load(base, name, make, concurrency=args.concurrency, seconds=args.seconds,
                                     max_requests=args.max_requests)) for name, make in operations]
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    baseline = rows[0]
    for row in rows:
        row["p95_vs_baseline"] = row["p95_ms"] / baseline["p95_ms"] if baseline["p95_ms"] else float("nan")
        row["target_p95_ms"] = None if row is baseline else (100 if row["operation"].startswith("POST") else 50)
    table = Table(title=f"API at concurrency {args.concurrency} ({seed['requests']} bookings seeded)")
    for column in ("operation", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "p95 / baseline",
                   "target p95"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for row in rows:
        table.add_row(row["operation"], str(row["requests"]), str(row["errors"]), f"{row['rps']:.0f}",
                      f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}", f"{row['p99_ms']:.1f}",
                      f"{row['p95_vs_baseline']:.2f}", "—" if row["target_p95_ms"] is None else
                      f"< {row['target_p95_ms']}")
    console.print(table)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
