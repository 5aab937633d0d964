"""Random walks through the simulated cloud (hypothesis state machine)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.cloud.simulated import SimulatedCloud
from processors.ports.cloud import CloudError, CloudState, LaunchSpec
from tests.cloud.conftest import FakeClock, run

SPEC = LaunchSpec("m5.large", "CML-2.9.*", startup_minutes=20, restart_minutes=5)
WORKERS = [f"Worker-{n}" for n in range(4)]
LONGEST_SECONDS = 20 * 60 * 1.1  # the slowest operation, jitter included

GONE_FOR_GOOD = {CloudState.FAILED, CloudState.SHUTTING_DOWN, CloudState.TERMINATED}
HAS_PRIVATE_IP = {CloudState.RUNNING, CloudState.STOPPING, CloudState.STOPPED}


class SimulatedCloudMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16), failure=st.sampled_from([0.0, 0.3, 1.0]))
    def setup(self, seed: int, failure: float) -> None:
        self.clock = FakeClock()
        self.cloud = SimulatedCloud(self.clock, seed=seed, failure_probability=failure)
        self.seen: dict[str, CloudState] = {}

    @rule(worker=st.sampled_from(WORKERS))
    def launch(self, worker: str) -> None:
        vm = run(self.cloud.launch(SPEC, worker))
        assert vm.worker_id == worker
        self.seen.setdefault(vm.cloud_id, vm.state)

    @rule(data=st.data(), action=st.sampled_from(["start", "stop", "terminate"]))
    def act(self, data: st.DataObject, action: str) -> None:
        if not self.seen:
            return
        cloud_id = data.draw(st.sampled_from(sorted(self.seen)))
        try:
            run(getattr(self.cloud, action)(cloud_id))
        except CloudError as refused:
            assert refused.code == "IncorrectInstanceState"
            assert action != "terminate"

    @rule(seconds=st.floats(0, 2 * LONGEST_SECONDS))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)

    @rule()
    def wait_until_settled(self) -> None:
        self.clock.advance(seconds=LONGEST_SECONDS)
        for vm in run(self.cloud.list_managed(include_terminated=True)):
            assert vm.state not in (CloudState.PENDING, CloudState.STOPPING, CloudState.SHUTTING_DOWN)
        assert self.cloud.next_change_at() is None

    @invariant()
    def states_move_only_forward_into_the_grave(self) -> None:
        for cloud_id, before in self.seen.items():
            now = run(self.cloud.describe(cloud_id))
            if before is CloudState.TERMINATED:
                assert now.state is CloudState.TERMINATED
            if before in GONE_FOR_GOOD:
                assert now.state in GONE_FOR_GOOD
            assert (now.private_ip is not None) == (now.state in HAS_PRIVATE_IP)
            self.seen[cloud_id] = now.state

    @invariant()
    def next_change_is_the_earliest_transition_still_to_end(self) -> None:
        # The cloud keeps a heap of end times; a scan of every VM is the definition.
        now = self.clock.now
        ends = [vm.done_at for vm in self.cloud._vms.values() if vm.done_at > now]  # noqa: SLF001
        assert self.cloud.next_change_at() == min(ends, default=None)

    @invariant()
    def at_most_one_live_vm_per_worker(self) -> None:
        live = [vm.worker_id for vm in run(self.cloud.list_managed()) if vm.state not in GONE_FOR_GOOD]
        assert len(live) == len(set(live))

    @invariant()
    def list_managed_hides_only_terminated(self) -> None:
        listed = {vm.cloud_id for vm in run(self.cloud.list_managed())}
        states = {cid: run(self.cloud.describe(cid)).state for cid in self.seen}
        assert listed == {cid for cid, state in states.items() if state is not CloudState.TERMINATED}


TestSimulatedCloudMachine = SimulatedCloudMachine.TestCase
TestSimulatedCloudMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
