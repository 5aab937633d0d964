"""The node definitions the fake CML knows: what CML adds to a node, and what its console says.

On import CML fills in a node that lists no interfaces from its node definition: the
``Loopback0`` of definitions that have one, then physical interfaces up to the definition's
minimum (so a lone IOSv node gets 2 interfaces, as on CML). Each definition also says how many
serial consoles a running node has and whether CML can extract its configuration. Definitions
the fake does not know get a generic Linux-like profile rather than a rejection, so labs written
for other tests still import. The values are the fake's choice, modelled on CML's reference
platform; a real controller reads them from its node definition files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeDefinition:
    physical: str  # label pattern, ``{n}`` is the slot
    min_count: int = 1
    loopback: str | None = None
    serial_consoles: int = 1
    driver: str = "SERVER"
    boot_line: str = "login:"


DEFINITIONS: dict[str, NodeDefinition] = {
    "iosv": NodeDefinition("GigabitEthernet0/{n}", loopback="Loopback0", driver="IOSV",
                           boot_line="Press RETURN to get started!"),
    "iosvl2": NodeDefinition("GigabitEthernet0/{n}", loopback="Loopback0", driver="IOSVL2",
                             boot_line="Press RETURN to get started!"),
    "csr1000v": NodeDefinition("GigabitEthernet{n1}", loopback="Loopback0", driver="CSR1000V",
                               boot_line="Press RETURN to get started!"),
    "iol-xe": NodeDefinition("Ethernet0/{n}", loopback="Loopback0", driver="IOL",
                             boot_line="Press RETURN to get started!"),
    "alpine": NodeDefinition("eth{n}", driver="ALPINE"),
    "ubuntu": NodeDefinition("ens{n2}", driver="UBUNTU"),
    "server": NodeDefinition("eth{n}", driver="SERVER"),
    "unmanaged_switch": NodeDefinition("port{n}", min_count=8, serial_consoles=0, driver="UMS", boot_line=""),
    "external_connector": NodeDefinition("port", serial_consoles=0, driver="EXTERNAL_CONNECTOR", boot_line=""),
}
GENERIC = NodeDefinition("eth{n}")


def definition(name: str) -> NodeDefinition:
    return DEFINITIONS.get(name, GENERIC)


def physical_label(node_definition: NodeDefinition, slot: int) -> str:
    return node_definition.physical.format(n=slot, n1=slot + 1, n2=slot + 2)
