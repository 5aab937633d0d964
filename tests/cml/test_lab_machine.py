"""CML's lab state machine under random command sequences (hypothesis)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.cml.lab_machine import ACTIVE, SETTLED, LabMachine, LabRefused
from adapters.cml.topology import parse_topology
from processors.ports.cml import LabStatus, NodeState
from tests.cml.conftest import lab_yaml

STEP = 1.0
FOREVER = 1_000.0
TOPOLOGY = parse_topology(lab_yaml(3))


class LabMachineRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.lab = LabMachine.imported("lab", TOPOLOGY, ["a", "b", "c"], self.now)
        self.expected = LabStatus.DEFINED_ON_CORE  # where the lab settles if left alone
        self.deleted = False

    @precondition(lambda self: not self.deleted)
    @rule()
    def start(self) -> None:
        self.lab.start(self.now, STEP)
        self.expected = LabStatus.STARTED

    @precondition(lambda self: not self.deleted)
    @rule()
    def stop(self) -> None:
        self.lab.stop(self.now, STEP)
        if self.expected is LabStatus.STARTED:
            self.expected = LabStatus.STOPPED

    @precondition(lambda self: not self.deleted)
    @rule()
    def wipe(self) -> None:
        running = self.lab.status(self.now) is LabStatus.STARTED
        try:
            self.lab.wipe(self.now, STEP)
        except LabRefused:
            assert running, "wipe refused although the lab was not started"
            return
        assert not running, "wipe accepted on a started lab"
        self.expected = LabStatus.DEFINED_ON_CORE

    @precondition(lambda self: not self.deleted)
    @rule()
    def delete(self) -> None:
        wiped = self.lab.status(self.now) is LabStatus.DEFINED_ON_CORE and self.lab.converged(self.now)
        try:
            self.lab.check_deletable(self.now)
        except LabRefused:
            assert not wiped
            return
        assert wiped
        self.deleted = True

    @rule(seconds=st.floats(0, 5 * STEP))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @precondition(lambda self: not self.deleted)
    @rule()
    def settle(self) -> None:
        self.now += FOREVER
        assert self.lab.converged(self.now)
        assert self.lab.status(self.now) is self.expected
        if self.expected is LabStatus.STARTED:
            assert {n.state for n in self.lab.nodes.values()} == {NodeState.BOOTED}

    @invariant()
    def status_follows_the_nodes(self) -> None:
        states = {node.state for node in self.lab.nodes.values()}
        status = self.lab.status(self.now)
        assert (status is LabStatus.STARTED) == bool(states & ACTIVE)
        if self.lab.converged(self.now):
            assert states <= SETTLED

    @invariant()
    def schedules_are_in_time_order(self) -> None:
        self.lab.advance(self.now)  # transitions are applied lazily, on each read
        for node in self.lab.nodes.values():
            times = [at for at, _ in node.schedule]
            assert times == sorted(times)
            assert all(at > self.now for at in times)


TestLabMachine = LabMachineRules.TestCase
TestLabMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


NODES = ["a", "b", "c"]


class NodeLevelRules(RuleBasedStateMachine):
    """CML's node-level ``state/start``, ``state/stop`` and ``wipe_disks`` touch one node only."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.lab = LabMachine.imported("lab", TOPOLOGY, NODES, self.now)
        self.expected = dict.fromkeys(NODES, NodeState.DEFINED_ON_CORE)
        self.starts = dict.fromkeys(NODES, 0)

    def _others_unchanged(self, node_id: str, call: object) -> None:
        before = {n: (list(self.lab.nodes[n].schedule), self.lab.nodes[n].state) for n in NODES if n != node_id}
        call()  # type: ignore[operator]
        after = {n: (list(self.lab.nodes[n].schedule), self.lab.nodes[n].state) for n in NODES if n != node_id}
        assert before == after

    @rule(node_id=st.sampled_from(NODES))
    def start(self, node_id: str) -> None:
        self.lab.advance(self.now)
        node = self.lab.nodes[node_id]
        waking = (node.schedule[-1][1] if node.schedule else node.state) not in ACTIVE
        self._others_unchanged(node_id, lambda: self.lab.start(self.now, STEP, only=[node_id]))
        self.starts[node_id] += waking
        self.expected[node_id] = NodeState.BOOTED

    @rule(node_id=st.sampled_from(NODES))
    def stop(self, node_id: str) -> None:
        self.lab.advance(self.now)
        was_active = self.lab.nodes[node_id].state in ACTIVE
        self._others_unchanged(node_id, lambda: self.lab.stop(self.now, STEP, only=[node_id]))
        if was_active:
            self.expected[node_id] = NodeState.STOPPED

    @rule(node_id=st.sampled_from(NODES))
    def wipe(self, node_id: str) -> None:
        self.lab.advance(self.now)
        running = self.lab.nodes[node_id].state in ACTIVE
        try:
            self._others_unchanged(node_id, lambda: self.lab.wipe(self.now, STEP, only=[node_id]))
        except LabRefused:
            assert running, "node wipe refused although the node was not running"
            return
        assert not running, "node wipe accepted on a running node"
        self.expected[node_id] = NodeState.DEFINED_ON_CORE

    @rule(seconds=st.floats(0, 5 * STEP))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def settle(self) -> None:
        self.now += FOREVER
        assert self.lab.converged(self.now)
        assert {n: node.state for n, node in self.lab.nodes.items()} == self.expected

    @invariant()
    def starts_count_each_wake_up(self) -> None:
        assert {n: node.starts for n, node in self.lab.nodes.items()} == self.starts


TestNodeLevel = NodeLevelRules.TestCase
TestNodeLevel.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
