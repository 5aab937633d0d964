"""Skipping quiet ticks (``processors/workers/quiet.py``) changes no decision: two identical
worlds, one controller skipping and one ticking in full, end with the same log and the same
VMs after any sequence of admins, reservations, cloud losses, restarts and clock steps."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.eventstore.factory import open_event_store
from domain.errors import DomainError
from domain.worker import Worker
from processors.workers.controller import WorkerController, WorkerControllerSettings
from tests.workers.conftest import START, ctx, seeded_templates

SPEC = seeded_templates()["personal-standard"]
ADMIN = {
    "stop": lambda w, c: w.stop("admin", c),
    "restart": lambda w, c: w.request_restart(c, reason="admin"),
    "terminate": lambda w, c: w.terminate("admin", c, force=True),
    "drain": lambda w, c: w.start_draining("admin", c),
    "cancel": lambda w, c: w.cancel_drain(c),
}

steps = st.one_of(
    st.tuples(st.just("provision"), st.integers(0, 2)),
    st.tuples(st.just("admin"), st.integers(0, 2), st.sampled_from(sorted(ADMIN))),
    st.tuples(st.just("lose_vm"), st.integers(0, 2)),
    st.tuples(st.just("restart_controller")),
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 2, 7, 25])),
)


class World:
    def __init__(self, seed: int, failure: float, *, skip: bool, slow: bool = False,
                 capacity: int | None = None) -> None:
        self.clock = VirtualClock(START)
        self.store = open_event_store("memory")
        # slow: boots take 2.5x the template's (boot timeouts); capacity: launches refused (retries)
        self.cloud = SimulatedCloud(self.clock, seed=seed, failure_probability=failure, jitter=0.2,
                                    time_scale=0.4 if slow else 1.0, capacity=capacity)
        self.settings = WorkerControllerSettings(skip_quiet_ticks=skip)
        self.controller = self._controller()

    def _controller(self) -> WorkerController:
        return WorkerController(self.store, self.cloud, self.clock, settings=self.settings)

    def apply(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "provision":
            worker_id = f"Worker-{step[1]}"
            if not self.store.exists(worker_id):
                self.store.save(Worker.request(SPEC, ctx(self.clock), worker_id=worker_id))
        elif kind == "admin":
            self._command(f"Worker-{step[1]}", lambda w: ADMIN[step[2]](w, ctx(self.clock)))
        elif kind == "lose_vm":
            vms = [vm for vm in asyncio.run(self.cloud.list_managed()) if not vm.state.is_gone]
            if vms:
                asyncio.run(self.cloud.terminate(vms[step[1] % len(vms)].cloud_id))
        elif kind == "restart_controller":
            self.controller = self._controller()
        else:
            self.clock.advance(timedelta(minutes=step[1]))
            asyncio.run(self.controller.tick())

    def _command(self, worker_id: str, command: Any) -> None:
        if not self.store.exists(worker_id):
            return
        worker = self.store.get(worker_id)
        try:
            command(worker)
        except DomainError:
            return
        self.store.save(worker)

    def seen(self) -> tuple[Any, ...]:
        # Everything but random ids (the test's causation ids, a reconciliation record's id).
        log = [(e.stream_id if e.stream_id.startswith("Worker-") else e.stream_id.split("-")[0], e.version, e.topic, e.event.metadata.get("actor"),
                sorted((k, repr(v)) for k, v in vars(e.event).items() if k not in ("metadata", "originator_id")))
               for e in self.store.read_all(limit=100_000)]
        vms = [(vm.cloud_id, vm.worker_id, vm.state) for vm in asyncio.run(self.cloud.list_managed(
            include_terminated=True))]
        return log, vms


@settings(max_examples=60, deadline=None)
# A boot timeout due while nothing else changes (the slow VM would finish after it).
@example(seed=0, failure=0.0, slow=True, capacity=None,
         script=[("provision", 0), ("tick", 0), ("tick", 25), ("tick", 7), ("tick", 7), ("tick", 2), ("tick", 1)])
# A launch refused for capacity: the retry is due while nothing else changes.
@example(seed=0, failure=0.0, slow=False, capacity=1,
         script=[("provision", 0), ("provision", 1), ("tick", 0), ("tick", 0), ("tick", 0), ("tick", 1), ("tick", 0)])
@given(seed=st.integers(0, 1000), failure=st.sampled_from([0.0, 0.3]), slow=st.booleans(),
       capacity=st.sampled_from([None, 1]), script=st.lists(steps, min_size=1, max_size=40))
def test_skipping_quiet_ticks_changes_nothing(seed: int, failure: float, slow: bool, capacity: int | None,
                                              script: list[tuple[Any, ...]]) -> None:
    skipping = World(seed, failure, skip=True, slow=slow, capacity=capacity)
    full = World(seed, failure, skip=False, slow=slow, capacity=capacity)
    try:
        for step in script:
            skipping.apply(step)
            full.apply(step)
            assert skipping.seen() == full.seen()
            assert skipping.controller.next_wakeup() == full.controller.next_wakeup()
    finally:
        skipping.store.close()
        full.store.close()


def test_a_quiet_controller_skips_ticks_until_something_changes() -> None:
    world = World(0, 0.0, skip=True)
    try:
        world.apply(("provision", 0))
        for _ in range(40):  # boots, then sits RUNNING
            world.apply(("tick", 1))
        skipped = world.controller.skipped_ticks
        assert skipped > 20
        world.apply(("admin", 0, "stop"))
        world.apply(("tick", 0))
        assert world.controller.skipped_ticks == skipped  # a worker event: the tick ran
        for _ in range(5):
            world.apply(("tick", 1))
        assert world.store.get("Worker-0").state.value == "STOPPED"
    finally:
        world.store.close()
