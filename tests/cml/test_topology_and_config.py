"""Reading CML lab YAML and deriving running configurations from it."""

from __future__ import annotations

import pytest

from adapters.cml.running_config import running_config
from adapters.cml.topology import TopologyInvalid, parse_topology
from tests.cml.conftest import lab_yaml

MINIMAL = (
    "lab: {version: 0.3.0, title: demo}\n"
    "nodes: [{id: n0, label: a, node_definition: alpine, x: 0, y: 0, interfaces: [{id: i0, type: physical, slot: 0}]},\n"
    "        {id: n1, label: b, node_definition: alpine, x: 0, y: 0, interfaces: [{id: i0, type: physical, slot: 0}]}]\n"
    "links: [{id: l0, n1: n0, i1: i0, n2: n1, i2: i0}]\n"
)


def test_the_fact_sheets_minimal_import_parses() -> None:
    topology = parse_topology(MINIMAL)
    assert topology.title == "demo"
    assert [node.label for node in topology.nodes] == ["a", "b"]
    assert topology.links[0].n2 == "n1"


def test_the_title_parameter_overrides_the_lab_title() -> None:
    assert parse_topology(MINIMAL, title="instance-1").title == "instance-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "must be a mapping"),
        ("lab: {version: 0.3.0}\nnodes: []\n", "Field required: links"),
        ("lab: {title: t}\nnodes: []\nlinks: []\n", "lab.version"),
        ("lab: {version: 0.3.0}\nnodes: []\nlinks: []\nextra: 1\n", "Extra inputs"),
        ("lab: {version: 0.3.0}\nnodes: [{id: n0}]\nlinks: []\n", "node_definition"),
        ("lab: {version: 0.3.0}\nnodes: [{id: n0, node_definition: x}, {id: n0, node_definition: x}]\nlinks: []\n",
         "Duplicate node id"),
        ("lab: {version: 0.3.0}\nnodes: [{id: n0, label: a, node_definition: x}, {id: n1, label: a, node_definition: x}]\n"
         "links: []\n", "Duplicate node label"),
        ("lab: {version: 0.3.0}\nnodes: [{id: n0, node_definition: x, interfaces: [{id: i0, type: serial}]}]\nlinks: []\n",
         "type must be"),
        ("lab: {version: 0.3.0}\nnodes: [{id: n0, node_definition: x, interfaces: [{id: i0, type: physical}]}]\n"
         "links: [{id: l0, n1: n0, i1: i9, n2: n0, i2: i0}]\n", "interface i9 is not on node n0"),
        (f"lab: {{version: 0.3.0, title: {'t' * 65}}}\nnodes: []\nlinks: []\n", "64 characters"),
    ],
)
def test_invalid_topologies_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(TopologyInvalid, match=message):
        parse_topology(text)


def test_running_config_reflects_hostname_interfaces_and_peers() -> None:
    topology = parse_topology(lab_yaml(3))
    middle = topology.nodes[1]
    assert running_config(middle, topology) == (
        "!\nhostname r2\n!\n"
        "interface GigabitEthernet0/0\n description to r1 GigabitEthernet0/1\n no ip address\n no shutdown\n!\n"
        "interface GigabitEthernet0/1\n description to r3 GigabitEthernet0/0\n no ip address\n no shutdown\n!\n"
        "end\n"
    )


def test_a_stored_configuration_is_what_an_untouched_node_runs() -> None:
    text = (
        "lab: {version: 0.3.0}\n"
        "nodes: [{id: n0, label: a, node_definition: iosv, configuration: \"hostname custom\\n\"}]\nlinks: []\n"
    )
    topology = parse_topology(text)
    assert running_config(topology.nodes[0], topology) == "hostname custom\n"


def test_a_title_override_does_not_leak_into_the_cached_parse() -> None:
    assert parse_topology(MINIMAL, title="instance-2").title == "instance-2"
    assert parse_topology(MINIMAL).title == "demo"
    with pytest.raises(TopologyInvalid, match="64 characters"):
        parse_topology(MINIMAL, title="x" * 65)
