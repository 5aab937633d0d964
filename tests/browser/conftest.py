"""Headless Chromium (Debian's, never a downloaded one) against the real app on a free port.

The server runs on a virtual clock set to the wall-clock time of the test (the pages draw
"the next 24 h" from the browser's clock, so both must agree), with the processors off: the
tests play the scheduler and the controllers on the store, exactly as tests/api does, so what
the page shows is decided by the test and not by timing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from domain.context import CommandContext
from domain.worker import Worker
from api.demo import sample_definitions
from tests.api.test_instances_support import TOKENS, serve

CHROMIUM = Path(os.environ.get("LRM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTRUCTOR_TOKEN = "ins"


def launch_chromium(playwright):  # noqa: ANN001, ANN201 - playwright's sync API objects
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


# Package scope: the sync API keeps an event loop running in this thread until it stops,
# which would break every later test that calls asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: run ./scripts/install-browser (Debian chromium) for the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class LiveApp:
    url: str
    container: Container
    clock: VirtualClock

    def ctx(self, actor: str) -> CommandContext:
        return CommandContext(at=self.clock.now(), actor=actor)

    def running_worker(self, template: str = "personal-standard") -> str:
        """Provision through the service, then play the worker controller up to RUNNING."""
        worker_id = self.container.worker_service.provision(template, self.ctx("admin:admin")).worker_id
        worker: Worker = self.container.store.get(worker_id)
        controller = self.ctx("system:worker-controller")
        worker.start_provisioning("i-0123456789abcdef0", controller)
        worker.mark_ready("10.0.0.10", controller)
        self.container.store.save(worker)
        return worker_id


def publish_samples(container: Container) -> None:
    ctx = CommandContext(at=container.clock.now(), actor="admin:admin")
    for fields, lab_yaml in sample_definitions():
        container.definition_service.publish(fields, ctx, lab_yaml=lab_yaml)


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[LiveApp]:
    clock = VirtualClock(datetime.now(UTC).replace(microsecond=0))
    container = Container(Settings(data_dir=tmp_path, store="sqlite", tokens=TOKENS), clock=clock)
    with serve(create_app(container)) as url:
        publish_samples(container)
        yield LiveApp(url, container, clock)


@pytest.fixture
def page(browser, live_app: LiveApp) -> Iterator[object]:  # noqa: ANN001
    # UTC in the browser too, so a moment typed into a datetime-local field is the server's.
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                                  timezone_id="UTC")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
