"""Composition for the simulator: a virtual clock, the simulated cloud and CML, a store
(in-memory by default), and the ``lablet simulate`` / ``lablet replay`` commands.

The harness itself (``processors/simulation``) knows only ports; this module picks the
adapters: ``VirtualClock``, ``SimulatedCloud`` (boot jitter and failures from the
workload, seeded), ``SimulatedCml`` (instant: ``time_scale=0``; lab boot is not modelled),
an in-memory artifact store, and ``open_event_store`` for the backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from adapters.eventstore.factory import open_event_store
from domain.worker_template import WorkerTemplateSpec, parse_templates_yaml
from processors.simulation import Simulation, SimulationResult, SimulationSettings, Workload, load_workload

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATES = ROOT / "config" / "worker-templates.yaml"
POLICIES = ("default", "reactive", "static")


class MemoryArtifacts:
    """The artifact port, in a dict (a simulation writes thousands of small lab YAMLs)."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def uri_for(self, key: str) -> str:
        return f"mem://{key}"

    def _key(self, uri_or_key: str) -> str:
        return uri_or_key.removeprefix("mem://")

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self._data[self._key(key)] = bytes(data)
        return self.uri_for(self._key(key))

    def get(self, uri_or_key: str) -> bytes:
        from processors.ports.artifacts import ArtifactNotFound

        try:
            return self._data[self._key(uri_or_key)]
        except KeyError:
            raise ArtifactNotFound(f"no artifact {uri_or_key!r}") from None

    def exists(self, uri_or_key: str) -> bool:
        return self._key(uri_or_key) in self._data

    def delete(self, uri_or_key: str) -> None:
        self._data.pop(self._key(uri_or_key), None)

    def put_lab_yaml(self, definition_name: str, sha256: str, text: str) -> str:
        from processors.ports.artifacts import lab_yaml_key

        return self.put(lab_yaml_key(definition_name, sha256), text.encode("utf-8"), "application/yaml")

    def close(self) -> None:
        self._data.clear()


def templates_for(workload: Workload, path: Path = DEFAULT_TEMPLATES) -> list[WorkerTemplateSpec]:
    if workload.templates is not None:
        return [WorkerTemplateSpec.from_dict(t) for t in workload.templates]
    return parse_templates_yaml(path.read_text())


def open_store(url: str | None) -> Any:
    """``None``/``memory`` → in-memory; ``sqlite:PATH``; ``postgresql://…`` (a scratch schema is the caller's job)."""
    if url in (None, "", "memory"):
        return open_event_store("memory")
    if url.startswith("sqlite:"):
        return open_event_store("sqlite", sqlite_path=Path(url.removeprefix("sqlite:").removeprefix("//")))
    if url.startswith(("postgres://", "postgresql://")):
        return open_event_store("postgres", postgres_url=url)
    raise ValueError(f"store URL {url!r}: use memory, sqlite:PATH or postgresql://...")


def build_simulation(workload: Workload, *, policy: str = "default", store: Any = None,
                     settings: SimulationSettings | None = None) -> Simulation:
    clock = VirtualClock(workload.start)
    cloud = SimulatedCloud(clock, failure_probability=workload.cloud.boot_failure_rate,
                           jitter=workload.cloud.jitter, seed=workload.seed)
    cml = SimulatedCml(SimulatedCmlSettings(time_scale=0, poll_interval_seconds=0, seed=workload.seed))
    settings = replace(settings or SimulationSettings(), policy=policy)
    return Simulation(workload, store=store if store is not None else open_event_store("memory"), clock=clock,
                      cloud=cloud, cml=cml, artifacts=MemoryArtifacts(), templates=templates_for(workload),
                      settings=settings)


def run_simulation(workload: Workload, *, policy: str = "default", store_url: str | None = None,
                   settings: SimulationSettings | None = None,
                   progress: Callable[[datetime, float], None] | None = None) -> SimulationResult:
    store = open_store(store_url)
    try:
        simulation = build_simulation(workload, policy=policy, store=store, settings=settings)
        started = time.perf_counter()
        result = simulation.run(progress)
        result.wall_seconds = time.perf_counter() - started
        return result
    finally:
        store.close()


def read_workload(path: Path, *, seed: int | None = None, scale: float = 1.0) -> Workload:
    return load_workload(path.read_text(), seed=seed, scale=scale)


def results_json(results: Sequence[SimulationResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, default=str)
