"""HTTP API under load: a real ``lablet serve`` (uvicorn, SQLite, processors on) on loopback,
driven by an aiohttp async load generator bounded in time and in requests.

    scripts/bench api [--concurrency 16] [--seconds 10] [--max-requests 5000] [--workers N] [--sse N]
                      [--quick] [--tiny] [--json]

Per operation: p50/p95/p99 latency (ms) and requests/s at the given concurrency, and the
ratio of p95 to the baseline ``GET /healthz`` measured in the same run (what the server and
the client cost before any of our code runs). Operations:

- reads: ``GET /api/v1/instances?limit=50`` (a list from a read model), ``GET /api/v1/workers``,
  ``GET /api/v1/instances/{id}`` (one instance, read-your-writes not requested);
- commands: ``POST /api/v1/instances`` (a booking tomorrow, by the exam service; 201 with
  the resulting position).

- mixed: reads and bookings at once (3 reads for each booking), the class-opens-the-
  dashboard case.

``--workers N`` serves the API from N processes (``lablet serve --workers N``; the
projections and processors in one more). ``--sse N`` keeps N ``/events/stream`` streams
open during every measurement. ``--bare`` (default on) also measures a bare FastAPI
endpoint (one route returning a constant, same uvicorn and worker count) at the same
concurrency: the saturation throughput of the stack itself, reported with the ratio.

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

import aiohttp
import httpx
from rich.console import Console
from rich.table import Table
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "samples" / "ccna-basic-routing"
TOKENS = "admin:adm,service:svc:exam,user:usr:alice,instructor:ins:teacher"
ADMIN = {"Authorization": "Bearer adm"}
SERVICE = {"Authorization": "Bearer svc"}
API = "/api/v1"
console = Console(width=110)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LRM_DATA_DIR": str(data_dir), "LRM_STORE": "sqlite", "LRM_TOKENS": TOKENS,
           "LRM_LOG_LEVEL": "WARNING", "LRM_WORKERS": str(workers),
           "LRM_SSE_MAX_STREAMS": "1000", "LRM_SSE_MAX_STREAMS_PER_CALLER": "1000"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def start_bare(port: int, workers: int) -> subprocess.Popen[bytes]:
    """A bare FastAPI app (one constant route, /healthz) under the same uvicorn and workers."""
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "scripts.benchmarks._bare_app:app", "--host",
                             "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(server: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def hold_streams(base: str, count: int, opened: list[int], stop_event: asyncio.Event) -> None:
    """``count`` SSE clients on /events/stream, each reading until told to stop."""
    if count <= 0:
        return
    connector = aiohttp.TCPConnector(limit=count, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        async def one() -> None:
            async with session.get(f"{API}/events/stream", headers={"Authorization": "Bearer ins"}) as response:
                if response.status != 200:
                    return
                opened.append(1)
                async for _chunk in response.content.iter_any():
                    if stop_event.is_set():
                        return

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await stop_event.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def measure_with_streams(base: str, streams: int, operations: list[tuple[str, Any]], **kwargs: Any,
                               ) -> tuple[list[dict[str, Any]], int]:
    stop_event = asyncio.Event()
    opened: list[int] = []
    holder = asyncio.create_task(hold_streams(base, streams, opened, stop_event))
    for _ in range(100):  # until they are open (or refused)
        if len(opened) >= streams or holder.done():
            break
        await asyncio.sleep(0.1)
    rows = [await load(base, name, make, **kwargs) for name, make in operations]
    still_open = len(opened)
    stop_event.set()
    await holder
    return rows, still_open


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
    """``concurrency`` workers issue requests back to back until time or count runs out.

    aiohttp, not httpx: at 64 connections httpx's pool is the bottleneck (measured against the
    bare endpoint on this machine: ~90 req/s with httpx, ~760 with aiohttp), so the numbers
    were the client's, not the server's."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def worker() -> None:
            nonlocal issued, errors
            while time.perf_counter() < deadline and issued < max_requests:
                number = issued
                issued += 1
                method, path, kwargs = make(number)
                began = time.perf_counter()
                async with session.request(method, path, **kwargs) as response:
                    await response.read()
                    status = response.status
                latencies.append((time.perf_counter() - began) * 1000)
                if status >= 400:
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
    parser.add_argument("--workers", type=int, default=1, help="API processes of the server")
    parser.add_argument("--sse", type=int, default=0, help="SSE streams held open during the measurements")
    parser.add_argument("--no-bare", dest="bare", action="store_false", help="skip the bare FastAPI baseline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.max_requests = min(args.seconds, 5.0), min(args.max_requests, 1000)
    if args.tiny:
        args.seconds, args.max_requests, args.concurrency = 1.0, 50, min(args.concurrency, 4)
    with tempfile.TemporaryDirectory(prefix="lrm-bench-api-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp), port, args.workers)
        try:
            wait_ready(base, server)
            publish(base)
            # Something to read: a first batch of bookings.
            seed = asyncio.run(load(base, "seed", lambda n: ("POST", f"{API}/instances",
                                                             {"json": booking(n), "headers": SERVICE}),
                                    concurrency=4, seconds=30, max_requests=max(20, args.max_requests // 10)))
            first: list[dict[str, Any]] = []
            for _ in range(100):  # the read models of another process catch up with the seed
                first = httpx.get(f"{base}{API}/instances?limit=1", headers=ADMIN, timeout=10).json()["items"]
                if first:
                    break
                time.sleep(0.1)
            one = first[0]["id"] if first else "none"
            counter = iter(range(10**9, 2 * 10**9))
            operations = [
                ("GET /healthz (baseline)", lambda n: ("GET", "/healthz", {})),
                ("GET /instances?limit=50", lambda n: ("GET", f"{API}/instances?limit=50", {"headers": ADMIN})),
                ("GET /workers", lambda n: ("GET", f"{API}/workers", {"headers": ADMIN})),
                ("GET /instances/{id}", lambda n: ("GET", f"{API}/instances/{one}", {"headers": ADMIN})),
                ("POST /instances", lambda n: ("POST", f"{API}/instances",
                                               {"json": booking(next(counter)), "headers": SERVICE})),
                ("mixed: 3 reads : 1 booking", lambda n: (
                    ("POST", f"{API}/instances", {"json": booking(next(counter)), "headers": SERVICE}) if n % 4 == 0
                    else ("GET", f"{API}/instances?limit=50" if n % 4 == 1 else f"{API}/instances/{one}",
                          {"headers": ADMIN}))),
            ]
            rows, streams_open = asyncio.run(measure_with_streams(
                base, args.sse, operations, concurrency=args.concurrency, seconds=args.seconds,
                max_requests=args.max_requests))
        finally:
            stop(server)
        bare_row: dict[str, Any] | None = None
        if args.bare:
            bare_port = free_port()
            bare = start_bare(bare_port, args.workers)
            try:
                wait_ready(f"http://127.0.0.1:{bare_port}", bare)
                bare_row = asyncio.run(load(f"http://127.0.0.1:{bare_port}", "bare FastAPI GET (saturation)",
                                            lambda n: ("GET", "/bare", {}), concurrency=args.concurrency,
                                            seconds=args.seconds, max_requests=args.max_requests))
            finally:
                stop(bare)
    if bare_row is not None:
        for row in rows:
            row["rps_vs_bare"] = row["rps"] / bare_row["rps"] if bare_row["rps"] else float("nan")
        bare_row["rps_vs_bare"] = 1.0
        rows.append(bare_row)
    baseline = rows[0]
    for row in rows:
        row["p95_vs_baseline"] = row["p95_ms"] / baseline["p95_ms"] if baseline["p95_ms"] else float("nan")
        row["target_p95_ms"] = (None if row is baseline or row is bare_row else
                                100 if row["operation"].startswith(("POST", "mixed")) else 50)
    table = Table(title=f"API at concurrency {args.concurrency}, {args.workers} API process(es), "
                        f"{streams_open}/{args.sse} SSE streams open ({seed['requests']} bookings seeded)")
    for column in ("operation", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "p95 / baseline",
                   "req/s / bare", "target p95"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for row in rows:
        table.add_row(row["operation"], str(row["requests"]), str(row["errors"]), f"{row['rps']:.0f}",
                      f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}", f"{row['p99_ms']:.1f}",
                      f"{row['p95_vs_baseline']:.2f}",
                      f"{row['rps_vs_bare']:.2f}" if "rps_vs_bare" in row else "—",
                      "—" if row.get("target_p95_ms") is None else f"< {row['target_p95_ms']}")
    console.print(table)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
