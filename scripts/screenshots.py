"""Screenshots of the dashboard and a timeline, from a populated, live demo, for docs/images/.

    .venv/bin/python scripts/screenshots.py [--out docs/images]

Runs the whole system in this process exactly as ``./scripts/run`` does (demo data, every
processor on the system clock), with the simulated cloud and CML 60x faster so the demo
workers boot in seconds, waits until labs are READY, then photographs the pages in Debian's
headless Chromium (``/usr/bin/chromium``; ``./scripts/install-browser`` installs it).
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from api.app import create_app  # noqa: E402
from api.container import Container  # noqa: E402
from api.settings import Settings  # noqa: E402

ADMIN_TOKEN = "screenshot-admin"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def serve(container: Container) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(container), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def wait_for_ready_labs(url: str, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    while True:
        items = httpx.get(f"{url}/api/v1/instances", params={"limit": 500}, headers=headers).json()["items"]
        ready = [i for i in items if i["state"] in ("READY", "RUNNING")]
        if len(ready) >= count or time.monotonic() > deadline:
            return ready
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for READY labs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), store="sqlite", tokens=f"admin:{ADMIN_TOKEN}", demo=True,
                            time_scale=60, log_level="WARNING")
        url, server, thread = serve(Container(settings))
        try:
            ready = wait_for_ready_labs(url, 3, args.timeout)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                page.fill("#token", ADMIN_TOKEN)
                page.click("#login-form button[type=submit]")
                page.wait_for_selector("body[data-loaded=true]")
                page.wait_for_selector("#live.live")
                page.wait_for_timeout(1500)  # let a debounced refresh settle
                page.screenshot(path=str(args.out / "dashboard.png"), full_page=True)
                if ready:
                    page.goto(f"{url}/instances/{ready[0]['id']}")
                    page.wait_for_selector("body[data-loaded=true]")
                    rows = page.query_selector_all("#events tbody tr")
                    page.click("#first")
                    for _ in range(max(0, len(rows) // 2)):
                        page.click("#next")
                    page.wait_for_selector("#replay-fields dt")
                    page.screenshot(path=str(args.out / "timeline.png"), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    print(f"screenshots in {args.out}: dashboard.png" + (", timeline.png" if ready else " (no READY lab in time)"))


if __name__ == "__main__":
    main()
