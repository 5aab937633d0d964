"""Open SSE streams against a real server: how other requests fare while they are open, and
the server's memory before, during and after (issue 16: 1 000 streams, /healthz at 1.4 s).

    scripts/bench sse [--streams 1000] [--rounds 2] [--baseline-tree DIR]

A ``lablet serve`` (uvicorn, SQLite, processors off) runs in its own process on loopback
with the stream caps raised to let every stream in. Per round: open ``--streams`` streams
from one async client, wait 3 s, time 20 ``GET /healthz`` and 20 ``GET /api/v1/instances``
(medians), close them all, wait 5 s, time again. RSS is the server's ``VmRSS``.
``--baseline-tree`` runs the same against another source tree (e.g. ``git archive`` of an
earlier commit) first, so both are measured side by side on the same, shared, machine.
Bounded: the streams, 80 probe requests per round, and at most a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "adm"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _median_ms(client: httpx.AsyncClient, url: str, n: int = 20) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return statistics.median(times)


async def _probe(client: httpx.AsyncClient, pid: int) -> str:
    health, listing = await _median_ms(client, "/healthz"), await _median_ms(client, "/api/v1/instances")
    return f"{health:.1f} / {listing:.1f} ms, {_rss_mb(pid):.0f} MB"


async def _hold(client: httpx.AsyncClient, opened: asyncio.Future[int]) -> None:
    async with client.stream("GET", "/api/v1/events/stream") as response:
        opened.set_result(response.status_code)
        async for _ in response.aiter_raw():
            pass


async def run(tree: Path, streams: int, rounds: int) -> list[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(tree), "LRM_TOKENS": f"admin:{TOKEN}", "LRM_PROCESSORS": "false",
           "LRM_DATA_DIR": tempfile.mkdtemp(prefix="bench-sse-"), "LRM_SSE_MAX_STREAMS": str(streams + 10),
           "LRM_SSE_MAX_STREAMS_PER_CALLER": str(streams + 10), "LRM_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                     headers={"Authorization": f"Bearer {TOKEN}"},
                                     limits=httpx.Limits(max_connections=streams + 10)) as client:
            for _ in range(300):
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            idle = await _probe(client, server.pid)
            for round_ in range(1, rounds + 1):
                loop = asyncio.get_running_loop()
                opened = [loop.create_future() for _ in range(streams)]
                holders = [asyncio.create_task(_hold(client, future)) for future in opened]
                statuses = await asyncio.gather(*opened)
                await asyncio.sleep(3)
                busy = await _probe(client, server.pid)
                for holder in holders:
                    holder.cancel()
                await asyncio.gather(*holders, return_exceptions=True)
                await asyncio.sleep(5)
                closed = await _probe(client, server.pid)
                lines.append(f"| {tree.name} | {round_} | {statuses.count(200)}/{streams} | {idle} | {busy} | {closed} |")
    finally:
        server.terminate()
        server.wait(10)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-tree", type=Path, help="another source tree to measure first")
    args = parser.parse_args()
    print("| tree | round | streams open | idle: /healthz / list, RSS | open | after closing |")
    print("|---|---|---|---|---|---|")
    for tree in ([args.baseline_tree] if args.baseline_tree else []) + [ROOT]:
        for line in asyncio.run(run(tree.resolve(), args.streams, args.rounds)):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
