from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.eventstore.factory import open_event_store
from adapters.eventstore.store import EventStore
from domain.context import CommandContext
from domain.worker import Worker
from domain.worker_template import WorkerTemplateSpec, parse_templates_yaml
from processors.workers.controller import TickReport, WorkerController

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def seeded_templates() -> dict[str, WorkerTemplateSpec]:
    specs = parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())
    return {spec.name: spec for spec in specs}


@pytest.fixture
def template() -> WorkerTemplateSpec:
    return seeded_templates()["personal-standard"]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def store() -> Iterator[EventStore]:
    with open_event_store("memory") as opened:
        yield opened


@pytest.fixture
def cloud(clock: VirtualClock) -> SimulatedCloud:
    return SimulatedCloud(clock, jitter=0.0)


@pytest.fixture
def controller(store: EventStore, cloud: SimulatedCloud, clock: VirtualClock) -> WorkerController:
    return WorkerController(store, cloud, clock, provider_name="simulated")


def ctx(clock: VirtualClock, actor: str = "admin:test") -> CommandContext:
    return CommandContext(at=clock.now(), actor=actor)


def request_worker(store: EventStore, clock: VirtualClock, spec: WorkerTemplateSpec) -> str:
    worker = Worker.request(spec, ctx(clock), reason="test")
    store.save(worker)
    return worker.id


def tick(controller: WorkerController) -> TickReport:
    return asyncio.run(controller.tick())


def change(store: EventStore, worker_id: str, command) -> None:  # noqa: ANN001 - a lambda over Worker
    worker = store.get(worker_id)
    command(worker)
    store.save(worker)


def advance(clock: VirtualClock, minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
