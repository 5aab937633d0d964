"""Hypothesis state machine: admins, the cloud and restarts of the controller in any order.

After every controller tick the cloud and the store agree:
- at most one live VM per worker, and none for a worker that is TERMINATED, FAILED or unknown;
- a RUNNING/DRAINING/STOPPING/STOPPED worker's VM exists and is not gone;
- a worker never stays PROVISIONING past twice its expected boot (+ one tick).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adapters.cloud.simulated import SimulatedCloud
from adapters.clock import VirtualClock
from adapters.eventstore.factory import open_event_store
from domain.errors import DomainError
from domain.worker import Worker, WorkerState
from processors.workers.controller import WorkerController
from tests.workers.conftest import START, ctx, seeded_templates

W = WorkerState
SPEC = seeded_templates()["personal-standard"]
ADMIN_ALLOWED = {
    "stop": {W.RUNNING, W.DRAINING},
    "restart": {W.STOPPED},
    "terminate": {W.PENDING, W.PROVISIONING, W.RUNNING, W.DRAINING, W.STOPPING, W.STOPPED, W.FAILED},
    "drain": {W.RUNNING},
    "cancel": {W.DRAINING},
}


class ControllerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.workers: list[str] = []
        self.ticked = False

    @initialize(seed=st.integers(0, 10_000), failure=st.sampled_from([0.0, 0.3]))
    def setup(self, seed: int, failure: float) -> None:
        self.clock = VirtualClock(START)
        self.store = open_event_store("memory")
        self.cloud = SimulatedCloud(self.clock, seed=seed, failure_probability=failure, jitter=0.2)
        self.controller = WorkerController(self.store, self.cloud, self.clock)

    def teardown(self) -> None:
        self.store.close()

    def _command(self, worker_id: str, command) -> None:  # noqa: ANN001
        worker = self.store.get(worker_id)
        try:
            command(worker)
        except DomainError:
            return  # not allowed in this state: an admin's 409
        self.store.save(worker)

    @precondition(lambda self: len(self.workers) < 3)
    @rule()
    def provision(self) -> None:
        worker = Worker.request(SPEC, ctx(self.clock))
        self.store.save(worker)
        self.workers.append(worker.id)
        self.ticked = False

    @precondition(lambda self: self.workers)
    @rule(n=st.integers(0, 3), action=st.sampled_from(sorted(ADMIN_ALLOWED)))
    def admin(self, n: int, action: str) -> None:
        # Only workers the command is allowed on: every admin step changes something.
        targets = [w for w in self.workers if self.store.get(w).state in ADMIN_ALLOWED[action]]
        if not targets:
            return
        c = ctx(self.clock)
        commands = {
            "stop": lambda w: w.stop("admin", c),
            "restart": lambda w: w.request_restart(c, reason="admin"),
            "terminate": lambda w: w.terminate("admin", c, force=True),
            "drain": lambda w: w.start_draining("admin", c),
            "cancel": lambda w: w.cancel_drain(c),
        }
        self._command(targets[n % len(targets)], commands[action])
        self.ticked = False

    @precondition(lambda self: self.workers)
    @rule(n=st.integers(0, 3))
    def cloud_loses_a_vm(self, n: int) -> None:
        vms = [vm for vm in asyncio.run(self.cloud.list_managed()) if not vm.state.is_gone]
        if vms:
            asyncio.run(self.cloud.terminate(vms[n % len(vms)].cloud_id))
            self.ticked = False

    @rule()
    def controller_restarts(self) -> None:
        self.controller = WorkerController(self.store, self.cloud, self.clock)
        self.ticked = False

    @rule(minutes=st.sampled_from([1, 5, 25]))
    def time_passes_and_the_controller_ticks(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        asyncio.run(self.controller.tick())
        self.ticked = True

    @invariant()
    def cloud_and_store_agree_after_a_tick(self) -> None:
        if not self.ticked:
            return
        live_vms = [vm for vm in asyncio.run(self.cloud.list_managed()) if not vm.state.is_gone]
        owners = [vm.worker_id for vm in live_vms]
        assert len(owners) == len(set(owners)), f"two live VMs for one worker: {owners}"
        now = self.clock.now()
        for worker_id in self.workers:
            worker = self.store.get(worker_id)
            mine = [vm for vm in live_vms if vm.worker_id == worker_id]
            if worker.state in (W.TERMINATED, W.FAILED):
                assert not mine, f"{worker.state} worker keeps VM {mine}"
            if worker.state in (W.RUNNING, W.DRAINING, W.STOPPING, W.STOPPED):
                assert [vm.cloud_id for vm in mine] == [worker.cloud_instance_id]
            if worker.state is W.PROVISIONING:
                started = worker.entered_at(W.PROVISIONING)
                expected = worker.expected_ready_at - started
                assert now - started < 2 * expected + timedelta(minutes=20), "stuck in PROVISIONING"


ControllerMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestControllerMachine = ControllerMachine.TestCase
