"""An IOS-style running configuration derived from a lab topology.

The simulated CML and the fake server answer ``extract_configuration`` with it, so collected
configs reflect the lab (hostname from the node label, one stanza per interface, link peers
in the descriptions) instead of being placeholders.
"""

from __future__ import annotations

from adapters.cml.topology import NodeSpec, Topology


def running_config(node: NodeSpec, topology: Topology) -> str:
    if node.configuration:
        # A node boots from its stored configuration; an untouched lab extracts it unchanged.
        return node.configuration
    peers = _link_peers(topology)
    lines = ["!", f"hostname {node.label}", "!"]
    for interface in node.interfaces:
        lines.append(f"interface {interface.label}")
        peer = peers.get((node.local_id, interface.local_id))
        if peer:
            lines.append(f" description to {peer}")
        lines.append(" no ip address")
        if interface.type == "physical":
            lines.append(" no shutdown")
        lines.append("!")
    lines.append("end")
    return "\n".join(lines) + "\n"


def _link_peers(topology: Topology) -> dict[tuple[str, str], str]:
    label = {node.local_id: node.label for node in topology.nodes}
    interface_label = {
        (node.local_id, interface.local_id): interface.label
        for node in topology.nodes
        for interface in node.interfaces
    }
    peers: dict[tuple[str, str], str] = {}
    for link in topology.links:
        end_a, end_b = (link.n1, link.i1), (link.n2, link.i2)
        peers[end_a] = f"{label[link.n2]} {interface_label[end_b]}"
        peers[end_b] = f"{label[link.n1]} {interface_label[end_a]}"
    return peers
