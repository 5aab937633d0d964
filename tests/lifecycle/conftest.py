"""A small world for the instance controller: an in-memory store, a virtual clock, a local
artifact store, a simulated CML (instant: ``time_scale=0``), one RUNNING worker and the
sample definition. The tests play the scheduler (place, ``start_instantiation``) directly."""

from __future__ import annotations

import asyncio
import copy
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from adapters.artifacts.blocking import BlockingArtifactStore
from adapters.artifacts.local import LocalArtifactStore
from adapters.clock import VirtualClock
from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from adapters.eventstore.factory import open_event_store
from domain.context import CommandContext
from domain.instance import LabletInstance
from domain.lab_yaml import rewrite_ports
from domain.timeslot import Timeslot, hold_window
from domain.worker import Worker
from domain.worker_template import parse_templates_yaml
from processors.commands.definitions import DefinitionService
from processors.instances import InstanceController, LifecycleSettings, MemoryCheckpoints
from processors.ports.cml import CmlEndpoint, CmlGateway

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "config" / "samples"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEFINITION = "ccna-basic-routing"
WORKER_IP = "10.0.0.10"


_PUBLISHED: dict[Any, list[Any]] = {}
# One artifact directory for the whole session: published lab YAML is content-addressed and
# instance artifacts are keyed by (unique) instance ids, so worlds can share it.
ARTIFACTS_ROOT = Path(tempfile.mkdtemp(prefix="lrm-lifecycle-artifacts-"))
_REWRITTEN: dict[tuple[str, tuple[tuple[str, int], ...]], str] = {}


def endpoint_for(worker_id: str, ip: str) -> CmlEndpoint:
    return CmlEndpoint(worker_id=worker_id, base_url=f"https://{ip}/", username="admin", password="pw")


def instant_cml(**overrides: Any) -> SimulatedCml:
    return SimulatedCml(SimulatedCmlSettings(time_scale=0, poll_interval_seconds=0, seed=7, **overrides))


class World:
    def __init__(self, tmp_path: Path, cml: CmlGateway | None = None) -> None:
        self.clock = VirtualClock(NOW)
        self.store = open_event_store("memory")
        self.artifacts = BlockingArtifactStore(LocalArtifactStore(ARTIFACTS_ROOT))
        self.cml = cml or instant_cml()
        self.checkpoints = MemoryCheckpoints()
        self.definitions = DefinitionService(self.store, self.artifacts)
        self.publish()
        self.worker_id = self.running_worker()

    # -- set-up ---------------------------------------------------------------------------
    def ctx(self, actor: str = "test") -> CommandContext:
        return CommandContext(at=self.clock.now(), actor=actor)

    def publish(self, name: str = DEFINITION, **overrides: Any) -> None:
        """Publish the sample (parsing a lab YAML takes ~0.2 s: the events of a publication
        are recorded once per test session and replayed into later worlds)."""
        key = (name, tuple(sorted(overrides.items())))
        cached = _PUBLISHED.get(key)
        if cached is not None:
            events = cached
            aggregate = None
            for event in events:
                aggregate = event.mutate(aggregate)
            aggregate._pending_events.extend(events)  # type: ignore[union-attr] - saved as if just published
            self.store.save(aggregate)
            return
        self._publish(name, **overrides)
        definition = self.definitions.get(name)
        _PUBLISHED[key] = [s.event for s in self.store.read_stream(definition.id)]

    def _publish(self, name: str, **overrides: Any) -> None:
        data = YAML(typ="safe").load((SAMPLES / DEFINITION / "definition.yaml").read_text())
        fields = copy.deepcopy(data)
        fields.pop("lab_yaml")
        fields["version"] = str(fields["version"])
        fields.update(name=name, **overrides)
        lab_yaml = (SAMPLES / DEFINITION / "lab.yaml").read_text()
        self.definitions.publish(fields, self.ctx("admin:admin"), lab_yaml=lab_yaml)

    def running_worker(self, ip: str = WORKER_IP) -> str:
        spec = next(t for t in parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())
                    if t.name == "personal-standard")
        worker = Worker.request(spec, self.ctx())
        worker.start_provisioning("i-0123456789abcdef0", self.ctx())
        worker.mark_ready(ip, self.ctx())
        self.store.save(worker)
        return worker.id

    def book(self, *, start_in: timedelta | None = timedelta(minutes=15), minutes: int = 60,
             definition: str = DEFINITION, worker_id: str | None = None) -> str:
        """Request, reserve and schedule (the API's and the scheduler's part)."""
        definition_agg = self.definitions.get(definition)
        version = definition_agg.versions[definition_agg.latest_version]
        now = self.clock.now()
        start = now + start_in if start_in is not None else None
        end = (start or now) + timedelta(minutes=minutes)
        instance = LabletInstance.request(version, "alice", Timeslot(start, end), self.ctx("user:alice"))
        self.store.save(instance)
        worker: Worker = self.store.get(worker_id or self.worker_id)
        hold_start, hold_end = hold_window(start, end, now)
        req = instance.requirements
        ports = worker.reserve(instance.id, req.resources, req.node_count, list(req.port_names),
                               hold_start, hold_end, self.ctx("system:scheduler"))
        instance.schedule(worker.id, ports, hold_start, hold_end, "decision-1", self.ctx("system:scheduler"))
        self.store.save(worker, instance)
        return instance.id

    def instantiate(self, instance_id: str, *, prepare: bool = True) -> None:
        """The scheduler's SCHEDULED → INSTANTIATING, with the lab YAML rewritten and stored
        as the scheduler does (``prepare=False``: no URI, the controller rewrites itself)."""
        instance: LabletInstance = self.store.get(instance_id)
        uri = None
        if prepare:
            definition = self.definitions.get(instance.definition_name)
            source = definition.versions[instance.definition_version].lab_yaml_uri
            ports = tuple(sorted(instance.allocated_ports.items()))
            text = _REWRITTEN.get((source, ports))
            if text is None:
                text = rewrite_ports(self.artifacts.get(source).decode(), dict(ports)).text
                _REWRITTEN[(source, ports)] = text
            uri = self.artifacts.put(f"instances/{instance_id}/lab.yaml", text.encode(), "application/yaml")
        instance.start_instantiation(1, self.ctx("system:scheduler"), lab_yaml_uri=uri)
        self.store.save(instance)

    # -- driving --------------------------------------------------------------------------
    def controller(self, cml: CmlGateway | None = None, settings: LifecycleSettings | None = None,
                   ) -> InstanceController:
        return InstanceController(self.store, cml or self.cml, self.artifacts, self.clock, endpoint_for,
                                  settings=settings, checkpoints=self.checkpoints)

    def run(self, controller: InstanceController, passes: int = 1) -> None:
        async def go() -> None:
            for _ in range(passes):
                await controller.run_pass()

        asyncio.run(go())

    def instance(self, instance_id: str) -> LabletInstance:
        return self.store.get(instance_id)

    def worker(self, worker_id: str | None = None) -> Worker:
        return self.store.get(worker_id or self.worker_id)

    def labs(self, worker_id: str | None = None) -> dict[str, str]:
        """``{lab id: title}`` on the simulated CML of a worker."""
        assert isinstance(self.cml, SimulatedCml)
        return {lab_id: lab.title for lab_id, lab in self.cml._labs.get(worker_id or self.worker_id, {}).items()}

    def events(self, instance_id: str) -> list[str]:
        return [s.event_name for s in self.store.read_stream(instance_id)]

    def login(self, instance_id: str) -> None:
        instance = self.instance(instance_id)
        instance.login(self.ctx("user:alice"), source="api")
        self.store.save(instance)

    def close(self) -> None:
        self.artifacts.close()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


# -- observing and crashing ---------------------------------------------------------------
class Crash(BaseException):
    """The process dies here (not an ``Exception``: nothing in the controller may catch it)."""


class Fuse:
    """Counts steps (CML calls, saves, checkpoints); blows *after* step ``at`` took effect,
    and from then on every step fails, like a dead process."""

    def __init__(self, at: int | None = None) -> None:
        self.at = at
        self.count = 0
        self.blown = False

    def before(self) -> None:
        if self.blown:
            raise Crash("dead")

    def after(self, what: str) -> None:
        self.count += 1
        if self.at is not None and self.count >= self.at:
            self.blown = True
            raise Crash(f"crash after step {self.count} ({what})")


class FusedCml:
    """Delegates to a CML gateway, recording each call; the fuse may blow after any call."""

    def __init__(self, inner: CmlGateway, fuse: Fuse) -> None:
        self.inner = inner
        self.fuse = fuse
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.fuse.before()
            self.calls.append((name, args[1:]))
            result = await method(*args, **kwargs)
            self.fuse.after(f"cml.{name}")
            return result

        return call


class FusedStore:
    """The event store with a fuse on ``save`` (the append happens, then the process dies)."""

    def __init__(self, inner: Any, fuse: Fuse) -> None:
        self.inner = inner
        self.fuse = fuse

    def save(self, *aggregates: Any) -> int:
        self.fuse.before()
        position = self.inner.save(*aggregates)
        self.fuse.after("store.save")
        return position

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if callable(attr):
            def call(*args: Any, **kwargs: Any) -> Any:
                self.fuse.before()
                return attr(*args, **kwargs)
            return call
        return attr


class FusedCheckpoints:
    def __init__(self, inner: MemoryCheckpoints, fuse: Fuse) -> None:
        self.inner = inner
        self.fuse = fuse

    def load_checkpoint(self, name: str) -> int:
        return self.inner.load_checkpoint(name)

    def save_checkpoint(self, name: str, position: int) -> None:
        self.fuse.before()
        self.inner.save_checkpoint(name, position)
        self.fuse.after("checkpoint")


def fused_controller(world: World, fuse: Fuse, settings: LifecycleSettings | None = None) -> InstanceController:
    return InstanceController(
        FusedStore(world.store, fuse), FusedCml(world.cml, fuse), world.artifacts, world.clock, endpoint_for,
        settings=settings, checkpoints=FusedCheckpoints(world.checkpoints, fuse),  # type: ignore[arg-type]
    )
