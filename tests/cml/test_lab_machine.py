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
