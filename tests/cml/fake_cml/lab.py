"""One lab on the fake CML: the shared ``LabMachine`` plus everything CML identifies by UUID.

CML gives every node, interface and link of an imported lab a UUID4 and answers with those
ids only (topology, ``lab_element_state``, statistics, events); the YAML's local ids (``n0``,
``i0``, ``l0``) survive only in ``download``. Interfaces CML adds to nodes that list none
(see ``catalog``) are made here, before the state machine sees the topology, so extracted
configurations and element states include them.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from adapters.cml.lab_machine import ACTIVE, LabMachine, SimNode
from adapters.cml.topology import InterfaceSpec, LinkSpec, NodeSpec, Topology
from processors.ports.cml import LabStatus, NodeState
from tests.cml.fake_cml import catalog

SCHEMA_VERSION = "0.3.1"  # CML 2.10's topology schema
OUI = "52:54:00"


@dataclass(frozen=True)
class Owner:
    id: str
    username: str
    fullname: str


@dataclass
class FakeInterface:
    id: str
    node_id: str
    spec: InterfaceSpec
    mac_address: str


@dataclass
class FakeLink:
    id: str
    spec: LinkSpec
    interface_a: str
    interface_b: str
    node_a: str
    node_b: str


@dataclass
class FakeLab:
    machine: LabMachine
    owner: Owner
    created: str
    interfaces: dict[str, FakeInterface]
    links: dict[str, FakeLink]
    events: list[dict[str, Any]] = field(default_factory=list)
    boots: dict[str, float] = field(default_factory=dict)  # node id -> when its start was asked
    console_keys: dict[str, list[str]] = field(default_factory=dict)
    autostart: dict[str, Any] = field(default_factory=lambda: {"enabled": False, "priority": None, "delay": None})
    node_staging: dict[str, bool] = field(
        default_factory=lambda: {"enabled": False, "start_remaining": True, "abort_on_failure": False}
    )

    @classmethod
    def imported(cls, topology: Topology, owner: Owner, now: float, rng: random.Random) -> FakeLab:
        topology = with_cml_interfaces(topology)
        lab_id = str(uuid.uuid4())
        node_ids = {node.local_id: str(uuid.uuid4()) for node in topology.nodes}
        machine = LabMachine.imported(lab_id, topology, [node_ids[n.local_id] for n in topology.nodes], now)
        interfaces: dict[str, FakeInterface] = {}
        by_local: dict[tuple[str, str], str] = {}
        for node in topology.nodes:
            for spec in node.interfaces:
                interface = FakeInterface(str(uuid.uuid4()), node_ids[node.local_id], spec, _mac(rng))
                interfaces[interface.id] = interface
                by_local[(node.local_id, spec.local_id)] = interface.id
        links = {}
        for spec in topology.links:
            link = FakeLink(str(uuid.uuid4()), spec, by_local[(spec.n1, spec.i1)], by_local[(spec.n2, spec.i2)],
                            node_ids[spec.n1], node_ids[spec.n2])
            links[link.id] = link
        stamp = datetime.now(UTC).isoformat()
        lab = cls(machine=machine, owner=owner, created=stamp, interfaces=interfaces, links=links)
        lab.record("ADD", "LAB", lab_id, {"lab_title": topology.title})
        return lab

    @property
    def id(self) -> str:
        return self.machine.lab_id

    @property
    def title(self) -> str:
        return self.machine.title

    @property
    def nodes(self) -> dict[str, SimNode]:
        return self.machine.nodes

    # -- actions (the state machine does the rest) -------------------------------------------

    def start(self, now: float, step: float, only: list[str] | None = None) -> None:
        """Start nodes; each one that was not running gets fresh console keys and boot output."""
        self.machine.advance(now)
        chosen = only if only is not None else list(self.nodes)
        waking = [node_id for node_id in chosen if _final_state(self.nodes[node_id]) not in ACTIVE]
        self.machine.start(now, step, only=only)
        for node_id in waking:
            self.boots[node_id] = now
            lines = catalog.definition(self.nodes[node_id].spec.node_definition).serial_consoles
            self.console_keys[node_id] = [str(uuid.uuid4()) for _ in range(lines)]
        self._state_event("start", only)

    def stop(self, now: float, step: float, only: list[str] | None = None) -> None:
        self.machine.stop(now, step, only=only)
        self._state_event("stop", only)

    def wipe(self, now: float, step: float, only: list[str] | None = None) -> None:
        self.machine.wipe(now, step, only=only)
        for node_id in only if only is not None else list(self.nodes):
            self.boots.pop(node_id, None)
            self.console_keys.pop(node_id, None)
        self._state_event("wipe", only)

    def _state_event(self, action: str, only: list[str] | None) -> None:
        if only is None:
            self.record("STATE_CHANGED", "LAB", self.id, {"action": action})
        for node_id in only or []:
            self.record("STATE_CHANGED", "NODE", node_id, {"action": action})

    def record(self, event: str, element_type: str, element_id: str, data: dict[str, Any],
               previous: dict[str, Any] | None = None) -> None:
        self.events.append({
            "lab_id": self.id, "event": event, "element_type": element_type, "element_id": element_id,
            "data": data, "previous": previous or {}, "timestamp": datetime.now(UTC).isoformat(),
        })

    # -- shapes -------------------------------------------------------------------------------

    def lab_object(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "modified": self.created,
            "lab_title": self.title,
            "lab_description": self.machine.topology.description,
            "lab_notes": self.machine.topology.notes,
            "owner": self.owner.id,
            "owner_username": self.owner.username,
            "owner_fullname": self.owner.fullname,
            "state": str(self.machine.status(now)),
            "node_count": len(self.nodes),
            "link_count": len(self.links),
            "groups": [],
            "effective_permissions": ["lab_view", "lab_edit", "lab_exec", "lab_admin"],
            "autostart": dict(self.autostart),
            "node_staging": dict(self.node_staging),
        }

    def topology(self, now: float, with_configuration: bool) -> dict[str, Any]:
        return {
            "lab": {
                "title": self.title,
                "description": self.machine.topology.description,
                "notes": self.machine.topology.notes,
                "version": SCHEMA_VERSION,
                "owner": self.owner.id,
                "node_staging": dict(self.node_staging),
            },
            "nodes": [
                {**self.node_object(node_id, now, with_configuration), "interfaces": self.node_interfaces(node_id, now)}
                for node_id in self.nodes
            ],
            "links": [self.link_object(link, now) for link in self.links.values()],
            "annotations": [],
            "smart_annotations": [],
        }

    def node_object(self, node_id: str, now: float, with_configuration: bool, *, state: bool = True,
                    operational: bool = False, configuration_as_string: bool = False) -> dict[str, Any]:
        node = self.nodes[node_id]
        node.advance(now)
        body: dict[str, Any] = {
            "id": node_id,
            "lab_id": self.id,
            "label": node.spec.label,
            "x": node.spec.x,
            "y": node.spec.y,
            "node_definition": node.spec.node_definition,
            "image_definition": None,
            "tags": list(node.spec.tags),
            "parameters": {},
            "ram": None,
            "cpus": None,
            "cpu_limit": None,
            "data_volume": None,
            "boot_disk_size": None,
            "hide_links": False,
            "priority": None,
            "pinned_compute_id": None,
            "pyats": {"username": None, "password": None, "enable_password": None},
            "boot_progress": _boot_progress(node.state),
        }
        if state:
            body["state"] = str(node.state)
        if with_configuration:
            if configuration_as_string:
                body["configuration"] = node.configuration
            else:
                body["configuration"] = [{"name": "Main", "content": node.configuration}] if node.configuration else []
        if operational:
            body["operational"] = self.operational(node_id)
        return body

    def operational(self, node_id: str) -> dict[str, Any]:
        node = self.nodes[node_id]
        active = node.state in ACTIVE
        keys = self.console_keys.get(node_id, []) if active else []
        return {
            "boot_disk_size": None, "cpu_limit": 100 if active else None, "cpus": 1 if active else None,
            "data_volume": None, "ram": 512 if active else None,
            "compute_id": COMPUTE_ID if active else None, "image_definition": None, "vnc_key": None,
            "resource_pool": None, "iol_app_id": None,
            "serial_consoles": [{"console_key": key, "label": f"Serial{line}", "device_number": line}
                                for line, key in enumerate(keys)],
        }

    def node_interfaces(self, node_id: str, now: float) -> list[dict[str, Any]]:
        return [self.interface_object(interface, now) for interface in self.interfaces.values()
                if interface.node_id == node_id]

    def interface_object(self, interface: FakeInterface, now: float, operational: bool = False) -> dict[str, Any]:
        node = self.nodes[interface.node_id]
        node.advance(now)
        body: dict[str, Any] = {
            "id": interface.id,
            "lab_id": self.id,
            "node": interface.node_id,
            "label": interface.spec.label,
            "type": interface.spec.type,
            "slot": interface.spec.slot,
            "mac_address": interface.mac_address,
            "is_connected": any(interface.id in (link.interface_a, link.interface_b) for link in self.links.values()),
            "state": element_state(node.state),
        }
        if operational:
            body["operational"] = {"device_name": None, "mac_address": interface.mac_address,
                                   "src_udp_port": None, "dst_udp_port": None}
        return body

    def link_object(self, link: FakeLink, now: float) -> dict[str, Any]:
        return {
            "id": link.id,
            "lab_id": self.id,
            "label": f"{self.nodes[link.node_a].spec.label}-to-{self.nodes[link.node_b].spec.label}",
            "interface_a": link.interface_a,
            "interface_b": link.interface_b,
            "node_a": link.node_a,
            "node_b": link.node_b,
            "state": self.link_state(link, now),
        }

    def link_state(self, link: FakeLink, now: float) -> str:
        states = set()
        for node_id in (link.node_a, link.node_b):
            self.nodes[node_id].advance(now)
            states.add(element_state(self.nodes[node_id].state))
        for state in (LabStatus.DEFINED_ON_CORE, LabStatus.STOPPED):
            if str(state) in states:
                return str(state)
        return str(LabStatus.STARTED)

    def element_state(self, now: float) -> dict[str, dict[str, str]]:
        self.machine.advance(now)
        return {
            "nodes": {node_id: str(node.state) for node_id, node in self.nodes.items()},
            "links": {link.id: self.link_state(link, now) for link in self.links.values()},
            "interfaces": {
                interface.id: element_state(self.nodes[interface.node_id].state)
                for interface in self.interfaces.values()
            },
        }

    def simulation_stats(self, now: float) -> dict[str, Any]:
        self.machine.advance(now)
        nodes = {}
        for node_id, node in self.nodes.items():
            running = node.state in ACTIVE
            seconds = max(0.0, now - self.boots.get(node_id, now)) if running else 0.0
            nodes[node_id] = {
                "cpu_usage": 5.0 if running else 0.0, "ram_usage": 10.0 if running else 0.0, "disk_usage": 0,
                "block0_rd_bytes": int(seconds * 1000), "block0_wr_bytes": int(seconds * 100),
                "cpu_limit": 100, "cpus": 1, "ram": 512, "times": {},
            }
        links = {link.id: {"readpackets": 0, "readbytes": 0, "writepackets": 0, "writebytes": 0, "drops": 0}
                 for link in self.links.values()}
        return {"nodes": nodes, "links": links}

    def console_log(self, node_id: str, now: float) -> str:
        """Boot output as CML logs it: ``|<ms since start>|<line>``, nothing before a start."""
        node = self.nodes[node_id]
        node.advance(now)
        if node_id not in self.boots:
            return ""
        started = self.boots[node_id]
        spec = node.spec
        lines = [(0, f"Booting {spec.label} ({spec.node_definition})")]
        if node.state is NodeState.BOOTED or (node.state is NodeState.STOPPED and node.configuration):
            lines.append((_ms(now - started), catalog.definition(spec.node_definition).boot_line or "ready"))
            lines.append((_ms(now - started), f"{spec.label}>"))
        return "".join(f"|{ms}|{text}\n" for ms, text in lines)

    def download(self) -> dict[str, Any]:
        """The lab in import form, with local ids and each node's stored configuration."""
        topology = self.machine.topology
        nodes = []
        for node in self.nodes.values():
            spec = node.spec
            entry: dict[str, Any] = {
                "id": spec.local_id, "label": spec.label, "node_definition": spec.node_definition,
                "x": spec.x, "y": spec.y, "tags": list(spec.tags),
                "interfaces": [
                    {"id": i.local_id, "label": i.label, "type": i.type,
                     **({"slot": i.slot} if i.slot is not None else {})}
                    for i in spec.interfaces
                ],
            }
            if node.configuration:
                entry["configuration"] = [{"name": "Main", "content": node.configuration}]
            nodes.append(entry)
        return {
            "annotations": [],
            "smart_annotations": [],
            "nodes": nodes,
            "links": [{"id": link.local_id, "n1": link.n1, "i1": link.i1, "n2": link.n2, "i2": link.i2,
                       "label": f"{link.n1}-{link.n2}"} for link in topology.links],
            "lab": {"title": self.title, "description": topology.description, "notes": topology.notes,
                    "version": SCHEMA_VERSION},
        }


COMPUTE_ID = "00000000-0000-4000-8000-00000000c0de"


def with_cml_interfaces(topology: Topology) -> Topology:
    """Nodes that list no interfaces get what CML creates from their node definition."""
    return replace(topology, nodes=tuple(_with_interfaces(node) for node in topology.nodes))


def _with_interfaces(node: NodeSpec) -> NodeSpec:
    if node.interfaces:
        return node
    definition = catalog.definition(node.node_definition)
    made: list[InterfaceSpec] = []
    if definition.loopback:
        made.append(InterfaceSpec(f"i{len(made)}", definition.loopback, "loopback", None))
    for slot in range(definition.min_count):
        made.append(InterfaceSpec(f"i{len(made)}", catalog.physical_label(definition, slot), "physical", slot))
    return replace(node, interfaces=tuple(made))


def element_state(state: NodeState) -> str:
    """An interface's state follows its node's, in the three states links and interfaces have."""
    if state in ACTIVE:
        return str(LabStatus.STARTED)
    if state is NodeState.DEFINED_ON_CORE:
        return str(LabStatus.DEFINED_ON_CORE)
    return str(LabStatus.STOPPED)


def _final_state(node: SimNode) -> NodeState:
    return node.schedule[-1][1] if node.schedule else node.state


def _boot_progress(state: NodeState) -> str:
    return {NodeState.BOOTED: "Booted", NodeState.STARTED: "Booting", NodeState.QUEUED: "Booting"}.get(
        state, "Not running"
    )


def _mac(rng: random.Random) -> str:
    return OUI + "".join(f":{rng.randrange(256):02x}" for _ in range(3))


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
