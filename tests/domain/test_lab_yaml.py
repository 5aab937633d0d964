"""Validation, placeholder discovery and in-place port rewriting of CML lab YAML."""

from __future__ import annotations

import textwrap

import pytest
from ruamel.yaml import YAML

from domain.errors import InvalidInput
from domain.lab_yaml import MAX_LAB_YAML_BYTES, Replacement, analyse, placeholder_name, rewrite_ports

MINIMAL = textwrap.dedent(
    """\
    lab:
      version: 0.3.0
      title: demo
    nodes:
      - id: n0
        label: r1
        node_definition: iosv
        x: 0
        y: 0
        tags: [core]
        interfaces:
          - {id: i0, type: physical, slot: 0}
      - id: n1
        label: r2
        node_definition: iosv
        x: 100
        y: 0
        interfaces:
          - {id: i0, type: physical, slot: 0}
    links:
      - {id: l0, n1: n0, i1: i0, n2: n1, i2: i0}
    """
)


def lab(nodes_tags: str = "[core]", smart: str = "", extra: str = "") -> str:
    text = MINIMAL.replace("tags: [core]", f"tags: {nodes_tags}")
    if smart:
        text += "smart_annotations:\n" + textwrap.indent(textwrap.dedent(smart), "  ")
    return text + extra


def load(text: str):
    return YAML(typ="safe", pure=True).load(text)


def test_minimal_lab_is_analysed() -> None:
    analysis = analyse(MINIMAL)
    assert analysis.title == "demo"
    assert analysis.node_count == 2
    assert analysis.link_count == 1
    assert analysis.lab_version == "0.3.0"
    assert analysis.placeholders == frozenset()
    assert analysis.node_definitions == frozenset({"iosv"})
    assert analysis.warnings == ()


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("${PORT_SERIAL_1}", "serial_1"),
        ("${SERIAL_1}", "serial_1"),
        ("${serial_1}", "serial_1"),
        ("${PORT_Vnc_2}", "vnc_2"),
        ("${port_serial_1}", "port_serial_1"),  # only the upper-case prefix is a prefix
        ("${PORT_PORT_A}", "port_a"),
    ],
)
def test_placeholder_names_are_normalised(spelling: str, name: str) -> None:
    assert placeholder_name(spelling) == name
    assert analyse(lab(nodes_tags=f"['{spelling}']")).placeholders == {name}


def test_placeholders_are_found_in_all_three_places() -> None:
    text = lab(
        nodes_tags="[core, 'console:${PORT_SERIAL_1}']",
        smart="""\
        - tag: vnc:${PORT_VNC_1}
          label: Desktop ${SSH_1}
        """,
    )
    assert analyse(text).placeholders == {"serial_1", "vnc_1", "ssh_1"}


BAD_LABS = [
    ("not yaml", "lab: [unclosed", "not valid YAML"),
    ("empty", "", "is empty"),
    ("not a mapping", "- a\n- b\n", "top level must be a mapping"),
    ("extra top-level key", MINIMAL + "topology: {}\n", "unknown top-level key(s) topology"),
    ("missing links", MINIMAL.split("links:")[0], "missing top-level key 'links'"),
    ("missing version", MINIMAL.replace("  version: 0.3.0\n", ""), "lab.version is required"),
    ("float version", MINIMAL.replace("version: 0.3.0", "version: 0.3"), "lab.version must be a string"),
    ("unknown version", MINIMAL.replace("version: 0.3.0", "version: 9.9.9"), "not a CML 2.x schema version"),
    ("nodes not a list", "lab: {version: 0.3.0}\nnodes: {}\nlinks: []\n", "nodes must be a list (line 2, column 8)"),
    ("node without definition", MINIMAL.replace("    node_definition: iosv\n    x: 0", "    x: 0"), "nodes[0].node_definition is required"),
    ("duplicate node id", MINIMAL.replace("id: n1", "id: n0"), "nodes[1].id 'n0' is used by another node"),
    ("numeric coordinates only", MINIMAL.replace("x: 100", "x: far"), "nodes[1].x must be an integer"),
    ("tag not a string", lab(nodes_tags="[7]"), "nodes[0].tags[0] must be a string"),
    ("bad interface type", MINIMAL.replace("type: physical, slot: 0}\n  - id: n1", "type: serial}\n  - id: n1"), "nodes[0].interfaces[0].type must be physical or loopback"),
    ("dangling link node", MINIMAL.replace("n2: n1", "n2: n9"), "links[0].n2 refers to unknown node 'n9'"),
    ("link interface of another node", MINIMAL.replace("i2: i0", "i2: i7"), "links[0].i2 refers to 'i7'"),
    ("duplicate key", MINIMAL.replace("  title: demo\n", "  title: demo\n  title: again\n"), "duplicate key 'title'"),
    ("smart annotation without tag", lab(smart="- label: hello\n"), "smart_annotations[0].tag is required"),
    ("annotation of unknown type", MINIMAL + "annotations:\n  - type: blob\n", "annotations[0].type must be one of"),
    ("port placeholder in a configuration", MINIMAL.replace("    x: 0\n", "    x: 0\n    configuration: 'port ${PORT_SERIAL_1}'\n", 1),
     "placeholder ${PORT_SERIAL_1} at nodes[0].configuration cannot be rewritten"),
    ("port placeholder in a node label", MINIMAL.replace("label: r1", "label: r1-${PORT_VNC_1}"), "at nodes[0].label cannot be rewritten"),
    ("too long title", MINIMAL.replace("title: demo", "title: " + "t" * 65), "lab.title must be one line of 1-64 characters"),
]


@pytest.mark.parametrize(("case", "text", "reason"), BAD_LABS, ids=[c[0] for c in BAD_LABS])
def test_invalid_labs_are_rejected_precisely(case: str, text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        analyse(text)
    assert caught.value.field == "lab_yaml"
    assert reason in caught.value.reason


def test_oversized_yaml_is_rejected_before_parsing() -> None:
    text = MINIMAL + "# " + "x" * MAX_LAB_YAML_BYTES + "\n"
    with pytest.raises(InvalidInput, match="1 MiB"):
        analyse(text)


def test_other_dollar_braces_are_only_warned_about() -> None:
    text = MINIMAL.replace("    x: 0\n", "    x: 0\n    configuration: |-\n      echo ${HOME}\n", 1)
    analysis = analyse(text)
    assert analysis.placeholders == frozenset()
    assert analysis.warnings == ("${HOME} at nodes[0].configuration is left as is (not a place where ports are rewritten)",)
    assert rewrite_ports(text, {}).text == text


def test_rewrite_replaces_only_the_placeholder_substrings() -> None:
    text = lab(
        nodes_tags="[core, 'console:${PORT_SERIAL_1}', \"${VNC_1}\"]   # keep this comment",
        smart="""\
        - tag: console:${PORT_SERIAL_1}
          label: 'R1 console: telnet ${PORT_SERIAL_1}'   # and this one
          fill_color: '#FFFFFFFF'
        - tag: "${VNC_1}"
          label: VNC ${PORT_VNC_1}
        """,
    )
    result = rewrite_ports(text, {"serial_1": 2000, "vnc_1": 2001, "unused": 2002})
    assert result.text == text.replace("${PORT_SERIAL_1}", "2000").replace("${VNC_1}", "2001").replace("${PORT_VNC_1}", "2001")
    assert result.replacements == [
        Replacement("nodes[0].tags[1]", "${PORT_SERIAL_1}", 2000),
        Replacement("nodes[0].tags[2]", "${VNC_1}", 2001),
        Replacement("smart_annotations[0].tag", "${PORT_SERIAL_1}", 2000),
        Replacement("smart_annotations[0].label", "${PORT_SERIAL_1}", 2000),
        Replacement("smart_annotations[1].tag", "${VNC_1}", 2001),
        Replacement("smart_annotations[1].label", "${PORT_VNC_1}", 2001),
    ]
    assert analyse(result.text).placeholders == frozenset()


def test_a_plain_scalar_that_would_become_a_number_is_quoted() -> None:
    text = lab(nodes_tags="[core, ${PORT_SERIAL_1}]".replace("[core, ${PORT_SERIAL_1}]", "\n      - core\n      - ${PORT_SERIAL_1}"),
               smart="- tag: ${SERIAL_1}\n  label: ${SERIAL_1}\n")
    result = rewrite_ports(text, {"serial_1": 2000})
    data = load(result.text)
    assert data["nodes"][0]["tags"] == ["core", "2000"]
    assert data["smart_annotations"][0] == {"tag": "2000", "label": "2000"}
    assert result.text == text.replace("${PORT_SERIAL_1}", '"2000"').replace("${SERIAL_1}", '"2000"')


def test_escaped_placeholders_in_double_quotes_are_rewritten_whole() -> None:
    # "\x24" is "$": the value holds a placeholder that is not written literally.
    text = lab(smart='- tag: "\\x24{PORT_SERIAL_1} \\u00e9"\n')
    assert analyse(text).placeholders == {"serial_1"}
    result = rewrite_ports(text, {"serial_1": 2000})
    assert load(result.text)["smart_annotations"][0]["tag"] == "2000 é"
    assert result.text.replace('"2000 é"', "X") == text.replace('"\\x24{PORT_SERIAL_1} \\u00e9"', "X")


def test_crlf_line_endings_are_kept() -> None:
    text = lab(nodes_tags="['c:${PORT_SERIAL_1}']").replace("\n", "\r\n")
    result = rewrite_ports(text, {"serial_1": 2000})
    assert result.text == text.replace("${PORT_SERIAL_1}", "2000")


def test_aliased_scalar_is_rewritten_once() -> None:
    text = lab(nodes_tags="[&con 'c:${PORT_SERIAL_1}']", smart="- tag: *con\n")
    result = rewrite_ports(text, {"serial_1": 2000})
    assert result.text == text.replace("${PORT_SERIAL_1}", "2000")
    data = load(result.text)
    assert data["smart_annotations"][0]["tag"] == data["nodes"][0]["tags"][0] == "c:2000"


def test_missing_port_is_reported_with_the_placeholder() -> None:
    text = lab(nodes_tags="['c:${PORT_SERIAL_1}', 'v:${PORT_VNC_1}']")
    with pytest.raises(InvalidInput) as caught:
        rewrite_ports(text, {"serial_1": 2000})
    assert caught.value.field == "ports"
    assert caught.value.reason == "unresolved placeholder ${PORT_VNC_1} at nodes[0].tags[1]"


@pytest.mark.parametrize(
    "ports",
    [{"serial_1": 0}, {"serial_1": 70000}, {"serial_1": "2000"}, {"serial_1": True}, {"SERIAL_1": 1, "serial_1": 2}, {"": 1}],
)
def test_invalid_port_maps_are_rejected(ports: dict) -> None:
    with pytest.raises(InvalidInput) as caught:
        rewrite_ports(lab(nodes_tags="['c:${SERIAL_1}']"), ports)
    assert caught.value.field == "ports"


def test_port_names_are_case_insensitive() -> None:
    text = lab(nodes_tags="['c:${PORT_SERIAL_1}']")
    assert rewrite_ports(text, {"SERIAL_1": 2000}).text == text.replace("${PORT_SERIAL_1}", "2000")


def test_rewrite_of_a_lab_without_placeholders_returns_it_unchanged() -> None:
    result = rewrite_ports(MINIMAL, {"serial_1": 2000})
    assert result.text == MINIMAL
    assert result.replacements == []


@pytest.mark.parametrize(
    ("plain", "quoted"),
    [
        ("${A}_${B}", True),  # an integer with digit separators in YAML 1.1 and 1.2
        ("${A}:${B}", False),  # "2000:2001" is text in both
        ("${A}.${B}", True),  # a float
        ("c:${A}", False),
        ("${A}", True),
    ],
)
def test_plain_scalars_are_quoted_only_when_they_would_not_read_as_text(plain: str, quoted: bool) -> None:
    text = lab(smart=f"- tag: {plain}\n")
    result = rewrite_ports(text, {"a": 2000, "b": 2001})
    value = plain.replace("${A}", "2000").replace("${B}", "2001")
    assert load(result.text)["smart_annotations"][0]["tag"] == value
    assert result.text == text.replace(plain, f'"{value}"' if quoted else value)


def test_coordinates_must_be_inside_the_canvas() -> None:
    with pytest.raises(InvalidInput, match=r"nodes\[1\].x must be within -15000..15000"):
        analyse(MINIMAL.replace("x: 100", "x: 15001"))
