"""CML's lab state machine, in memory, with time passed in.

One model of how a CML lab behaves, shared by the simulated CML adapter and the fake CML
HTTP server used in tests, so both refuse the same things:

- start, stop and wipe are asynchronous: each node follows a schedule of timed transitions
  (``QUEUED → STARTED → BOOTED``, ``→ STOPPED``, ``→ DEFINED_ON_CORE``), applied by ``advance``;
- the lab's state is derived from its nodes: STARTED while any node is active (including
  while a stop is still in progress), STOPPED while any node is stopped, else DEFINED_ON_CORE;
- wipe is refused while the lab is started, delete unless the lab is wiped and settled;
  stop and wipe on a lab that never started are accepted and change nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from adapters.cml.running_config import running_config
from adapters.cml.topology import NodeSpec, Topology
from processors.ports.cml import LabState, LabStatus, NodeState

ACTIVE = frozenset({NodeState.QUEUED, NodeState.STARTED, NodeState.BOOTED})
# States a node rests in; anything else means the lab has not converged.
SETTLED = frozenset({NodeState.BOOTED, NodeState.STOPPED, NodeState.DEFINED_ON_CORE})


class LabRefused(Exception):
    """The lab's state does not allow the request; CML answers 400 with this description."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass
class SimNode:
    node_id: str
    spec: NodeSpec
    state: NodeState = NodeState.DEFINED_ON_CORE
    schedule: list[tuple[float, NodeState]] = field(default_factory=list)
    configuration: str = ""
    starts: int = 0  # how many times the node was started (CML issues new console keys each time)

    def advance(self, now: float) -> None:
        while self.schedule and self.schedule[0][0] <= now:
            self.state = self.schedule.pop(0)[1]

    @property
    def settled(self) -> bool:
        return not self.schedule and self.state in SETTLED


@dataclass
class LabMachine:
    lab_id: str
    topology: Topology
    nodes: dict[str, SimNode]
    created_at: float

    @classmethod
    def imported(cls, lab_id: str, topology: Topology, node_ids: Iterable[str], now: float) -> LabMachine:
        nodes = {
            node_id: SimNode(node_id=node_id, spec=spec, configuration=spec.configuration)
            for node_id, spec in zip(node_ids, topology.nodes, strict=True)
        }
        return cls(lab_id=lab_id, topology=topology, nodes=nodes, created_at=now)

    @property
    def title(self) -> str:
        return self.topology.title

    def advance(self, now: float) -> None:
        for node in self.nodes.values():
            node.advance(now)

    def status(self, now: float) -> LabStatus:
        self.advance(now)
        states = {node.state for node in self.nodes.values()}
        if states & ACTIVE:
            return LabStatus.STARTED
        if NodeState.STOPPED in states or NodeState.DISCONNECTED in states:
            return LabStatus.STOPPED
        return LabStatus.DEFINED_ON_CORE

    def converged(self, now: float) -> bool:
        self.advance(now)
        return all(node.settled for node in self.nodes.values())

    def snapshot(self, now: float) -> LabState:
        return LabState(
            lab_id=self.lab_id,
            status=self.status(now),
            converged=self.converged(now),
            nodes={node.spec.label: node.state for node in self.nodes.values()},
        )

    def next_transition_at(self) -> float | None:
        pending = [node.schedule[0][0] for node in self.nodes.values() if node.schedule]
        return min(pending, default=None)

    def start(
        self,
        now: float,
        seconds_per_node: float,
        never_boot: frozenset[str] = frozenset(),
        only: Collection[str] | None = None,
    ) -> None:
        """Queue every inactive node; node ``i`` starts after ``i`` steps and boots one step later.

        Nodes in ``never_boot`` stay STARTED (boot never detected), like a hung image.
        ``only`` limits the call to some node ids (CML's node-level ``state/start``).
        """
        self.advance(now)
        waiting = [node for node in self._chosen(only) if _final_state(node) not in ACTIVE]
        for position, node in enumerate(waiting):
            node.starts += 1
            node.state = NodeState.QUEUED
            started_at = now + position * seconds_per_node
            node.schedule = [(started_at, NodeState.STARTED)]
            if node.node_id not in never_boot:
                node.schedule.append((started_at + seconds_per_node, NodeState.BOOTED))

    def stop(self, now: float, seconds_per_node: float, only: Collection[str] | None = None) -> None:
        self.advance(now)
        running = [node for node in self._chosen(only) if node.state in ACTIVE]
        for position, node in enumerate(running):
            node.schedule = [(now + (position + 1) * seconds_per_node, NodeState.STOPPED)]

    def wipe(self, now: float, seconds_per_node: float, only: Collection[str] | None = None) -> None:
        if only is None and self.status(now) is LabStatus.STARTED:
            raise LabRefused(f"Lab is not stopped: {self.lab_id}")
        chosen = self._chosen(only)
        for node in chosen if only is not None else ():
            node.advance(now)
            if node.state in ACTIVE:
                raise LabRefused(f"Node is not stopped: {node.node_id}")
        stopped = [node for node in chosen if node.state is not NodeState.DEFINED_ON_CORE]
        for position, node in enumerate(stopped):
            node.schedule = [(now + (position + 1) * seconds_per_node, NodeState.DEFINED_ON_CORE)]
            node.configuration = node.spec.configuration

    def _chosen(self, only: Collection[str] | None) -> list[SimNode]:
        if only is None:
            return list(self.nodes.values())
        return [node for node_id, node in self.nodes.items() if node_id in only]

    def check_deletable(self, now: float) -> None:
        if self.status(now) is not LabStatus.DEFINED_ON_CORE or not self.converged(now):
            raise LabRefused(f"Lab must be stopped and wiped before deletion: {self.lab_id}")

    def extract_configuration(self, node_id: str, now: float) -> str:
        node = self.nodes[node_id]
        node.advance(now)
        if not node.spec.has_config_extraction:
            raise LabRefused(f"Node {node_id} does not support configuration extraction")
        if node.state is not NodeState.BOOTED:
            raise LabRefused(f"Node {node_id} is not booted")
        node.configuration = running_config(node.spec, self.topology)
        return node.configuration


def _final_state(node: SimNode) -> NodeState:
    return node.schedule[-1][1] if node.schedule else node.state
