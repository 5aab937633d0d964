"""Simulated CML: the default ``CmlGateway``, labs held in memory per worker.

Durations are in *CML seconds* (import, boot, stop and wipe take a configured time per node,
so big labs are slower) and ``time_scale`` turns them into clock seconds: 1.0 against a
virtual clock in ``lablet simulate``, 0.01 for a demo, 0 for tests. Timeouts given by
callers are CML seconds too, so a boot timeout means the same thing at every scale.
The clock and sleep are injected (defaults: ``time.monotonic`` and ``asyncio.sleep``);
failures are drawn from a seeded ``random.Random``, so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from adapters.cml.lab_machine import ACTIVE, LabMachine, LabRefused
from adapters.cml.timing import Clock, Sleep
from adapters.cml.topology import TopologyInvalid, parse_topology
from processors.ports.cml import (
    CmlEndpoint,
    CmlLabNotFound,
    CmlRejected,
    CmlUnavailable,
    CmlWaitTimeout,
    LabState,
    LabStatus,
    NodeConsole,
)


@dataclass(frozen=True)
class SimulatedCmlSettings:
    import_seconds_per_node: float = 0.5
    boot_seconds_per_node: float = 30.0  # node i boots (i + 1) steps after start: launch queue
    stop_seconds_per_node: float = 2.0
    wipe_seconds_per_node: float = 1.0
    extract_seconds_per_node: float = 2.0
    settle_timeout_seconds: float = 1800.0  # stop and wipe give up after this long
    poll_interval_seconds: float = 5.0  # longest sleep of a waiter between reads; 0: wake on transitions only
    time_scale: float = 1.0
    import_failure_rate: float = 0.0  # import answers 5xx and creates nothing
    start_failure_rate: float = 0.0  # start answers 5xx and starts nothing
    boot_failure_rate: float = 0.0  # per node: started but boot never detected
    seed: int | None = None


class SimulatedCml:
    def __init__(
        self,
        settings: SimulatedCmlSettings | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings or SimulatedCmlSettings()
        self._clock = clock
        self._sleep = sleep
        self._faults = random.Random(self.settings.seed)
        self._ids = random.Random(self.settings.seed)
        self._labs: dict[str, dict[str, LabMachine]] = {}

    # -- the port ---------------------------------------------------------------------------

    async def import_lab(self, worker: CmlEndpoint, lab_yaml: str, title: str) -> str:
        try:
            topology = parse_topology(lab_yaml, title=title)
        except TopologyInvalid as error:
            raise CmlRejected(worker.worker_id, 400, str(error)) from error
        await self._pause(self.settings.import_seconds_per_node * len(topology.nodes))
        if self._fails(self.settings.import_failure_rate):
            raise CmlUnavailable(worker.worker_id, "simulated import failure (500)")
        lab_id = self._new_id()
        node_ids = [self._new_id() for _ in topology.nodes]
        self._worker(worker)[lab_id] = LabMachine.imported(lab_id, topology, node_ids, self._now())
        return lab_id

    async def start_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        lab = self._lab(worker, lab_id)
        if self._fails(self.settings.start_failure_rate):
            raise CmlUnavailable(worker.worker_id, "simulated start failure (500)")
        never_boot = frozenset(
            node_id for node_id in lab.nodes if self._fails(self.settings.boot_failure_rate)
        )
        lab.start(self._now(), self._scaled(self.settings.boot_seconds_per_node), never_boot)

    async def lab_state(self, worker: CmlEndpoint, lab_id: str) -> LabState:
        return self._lab(worker, lab_id).snapshot(self._now())

    async def wait_until_booted(self, worker: CmlEndpoint, lab_id: str, timeout: float) -> LabState:
        def check(state: LabState) -> bool:
            if state.status is not LabStatus.STARTED:
                raise CmlRejected(worker.worker_id, 409, f"Lab is not started: {lab_id} ({state.status})")
            return state.booted

        return await self._wait(worker, lab_id, timeout, "booted", check)

    async def stop_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        lab = self._lab(worker, lab_id)
        lab.stop(self._now(), self._scaled(self.settings.stop_seconds_per_node))
        await self._wait(
            worker, lab_id, self.settings.settle_timeout_seconds, "stopped",
            lambda state: state.converged and state.status is not LabStatus.STARTED,
        )

    async def wipe_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        lab = self._lab(worker, lab_id)
        try:
            lab.wipe(self._now(), self._scaled(self.settings.wipe_seconds_per_node))
        except LabRefused as refusal:
            raise CmlRejected(worker.worker_id, 400, refusal.description) from refusal
        await self._wait(
            worker, lab_id, self.settings.settle_timeout_seconds, "wiped",
            lambda state: state.converged and state.status is LabStatus.DEFINED_ON_CORE,
        )

    async def delete_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        labs = self._worker(worker)
        if lab_id not in labs:
            return
        if labs[lab_id].status(self._now()) is LabStatus.STARTED:
            await self.stop_lab(worker, lab_id)
        if labs[lab_id].status(self._now()) is not LabStatus.DEFINED_ON_CORE:
            await self.wipe_lab(worker, lab_id)
        lab = labs.get(lab_id)
        if lab is None:  # deleted by a concurrent teardown while we waited
            return
        try:
            lab.check_deletable(self._now())
        except LabRefused as refusal:
            raise CmlRejected(worker.worker_id, 400, refusal.description) from refusal
        del labs[lab_id]

    async def node_configs(self, worker: CmlEndpoint, lab_id: str) -> dict[str, str]:
        lab = self._lab(worker, lab_id)
        configs: dict[str, str] = {}
        for node_id, node in lab.nodes.items():
            try:
                await self._pause(self.settings.extract_seconds_per_node)
                text = lab.extract_configuration(node_id, self._now())
            except LabRefused:
                text = node.configuration
            if text:
                configs[node.spec.label] = text
        return configs

    async def consoles(self, worker: CmlEndpoint, lab_id: str) -> list[NodeConsole]:
        lab = self._lab(worker, lab_id)
        lab.advance(self._now())
        return [
            # A key per node start, stable while it runs (CML issues a new one each start).
            NodeConsole(node.spec.label, 0, str(uuid.uuid5(uuid.NAMESPACE_URL, f"cml-console:{node_id}:{node.starts}")))
            for node_id, node in lab.nodes.items()
            if node.state in ACTIVE and node.spec.has_console
        ]

    async def find_lab_by_title(self, worker: CmlEndpoint, title: str) -> str | None:
        matches = [lab for lab in self._worker(worker).values() if lab.title == title]
        return min(matches, key=lambda lab: lab.created_at).lab_id if matches else None

    async def list_labs(self, worker: CmlEndpoint) -> list[str]:
        return list(self._worker(worker))

    # -- helpers ----------------------------------------------------------------------------

    async def _wait(
        self,
        worker: CmlEndpoint,
        lab_id: str,
        timeout: float,
        awaited: str,
        done: Callable[[LabState], bool],
    ) -> LabState:
        deadline = self._now() + self._scaled(timeout)
        poll = max(self._scaled(self.settings.poll_interval_seconds), 0.0)
        while True:
            state = await self.lab_state(worker, lab_id)
            if done(state):
                return state
            now = self._now()
            if now >= deadline:
                raise CmlWaitTimeout(worker.worker_id, lab_id, awaited, state)
            # Sleep to the next scheduled transition rather than polling blindly: a virtual
            # clock then needs a handful of steps, not thousands. Capped by the poll interval
            # so changes made by others (a concurrent stop) are still noticed.
            wake = self._lab(worker, lab_id).next_transition_at()
            if wake is None:
                wake = deadline
            step = min(wake, deadline) - now
            if poll > 0:
                step = min(step, poll)
            await self._sleep(max(step, 0.0))

    async def _pause(self, cml_seconds: float) -> None:
        delay = self._scaled(cml_seconds)
        if delay > 0:
            await self._sleep(delay)

    def _scaled(self, cml_seconds: float) -> float:
        return cml_seconds * self.settings.time_scale

    def _now(self) -> float:
        return self._clock()

    def _fails(self, rate: float) -> bool:
        return rate > 0 and self._faults.random() < rate

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _worker(self, worker: CmlEndpoint) -> dict[str, LabMachine]:
        return self._labs.setdefault(worker.worker_id, {})

    def _lab(self, worker: CmlEndpoint, lab_id: str) -> LabMachine:
        lab = self._worker(worker).get(lab_id)
        if lab is None:
            raise CmlLabNotFound(worker.worker_id, lab_id)
        return lab
