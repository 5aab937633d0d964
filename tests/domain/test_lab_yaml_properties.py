"""Random placeholder spellings, scalar styles and port maps: rewriting is exact."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from domain.errors import InvalidInput
from domain.lab_yaml import PLACEHOLDER, analyse, rewrite_ports

NAMES = ["serial_1", "serial_2", "vnc_1", "ssh_1", "console"]
HEADER = """\
lab:
  version: 0.3.1
  title: property
nodes:
  - id: n0
    label: r1
    node_definition: iosv
    x: 0
    y: 0
    configuration: |-
      hostname r1
    tags:
"""
MIDDLE = """\
    interfaces:
      - id: i0
        type: physical
links: []
smart_annotations:
"""


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(NAMES))
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    prefixed = draw(st.booleans())
    return name, ("${PORT_" if prefixed else "${") + cased + "}"


@st.composite
def scalars(draw: st.DrawFn) -> tuple[str, str, set[str]]:
    """(source text of a scalar, its value, the port names it uses)."""
    parts = draw(st.lists(st.tuples(st.sampled_from(["", "c:", "R1 ", "vnc-", " x "]), spellings()), min_size=1, max_size=3))
    value = "".join(prefix + spelling for prefix, (_, spelling) in parts).strip()
    names = {name for _, (name, _) in parts}
    style = draw(st.sampled_from(["plain", "single", "double"]))
    source = {"plain": value, "single": f"'{value}'", "double": f'"{value}"'}[style]
    return source, value, names


labs = st.tuples(st.lists(scalars(), min_size=0, max_size=4), st.lists(st.tuples(scalars(), scalars()), min_size=0, max_size=3))


def render(tags: list, smart: list) -> str:
    text = HEADER
    text += "".join(f"      - {source}\n" for source, _, _ in tags) or "      - plain\n"
    text += MIDDLE
    for (tag, _, _), (label, _, _) in smart:
        text += f"  - tag: {tag}\n    label: {label}  # comment ${{KEPT}}\n    is_on: true\n"
    if not smart:
        text = text.replace("smart_annotations:\n", "")
    return text


def load(text: str):
    return YAML(typ="safe", pure=True).load(text)


@settings(max_examples=100, deadline=None)
@given(lab=labs, ports=st.dictionaries(st.sampled_from(NAMES), st.integers(1, 65535), min_size=len(NAMES), max_size=len(NAMES)),
       upper=st.booleans())
def test_rewrite_substitutes_exactly_and_keeps_everything_else(lab: tuple, ports: dict[str, int], upper: bool) -> None:
    tags, smart = lab
    text = render(tags, smart)
    used = {n for _, _, names in tags for n in names} | {n for pair in smart for _, _, names in pair for n in names}
    assert analyse(text).placeholders == used

    given_ports = {k.upper() if upper else k: v for k, v in ports.items()}
    result = rewrite_ports(text, given_ports)

    def sub(value: str) -> str:
        return PLACEHOLDER.sub(lambda m: str(ports[m.group(1).lower()]), value)

    data, original = load(result.text), load(text)
    assert data["lab"] == original["lab"] and data["links"] == original["links"]
    node, before = data["nodes"][0], original["nodes"][0]
    assert node["tags"] == [sub(str(tag)) for tag in before["tags"]]
    assert {k: v for k, v in node.items() if k != "tags"} == {k: v for k, v in before.items() if k != "tags"}
    for got, was in zip(data.get("smart_annotations", []), original.get("smart_annotations", [])):
        assert got == {**was, "tag": sub(was["tag"]), "label": sub(was["label"])}
    assert analyse(result.text).placeholders == frozenset()
    assert len(result.replacements) == len(PLACEHOLDER.findall(text)) - len(smart)  # ${KEPT} comments are not scalars

    # Outside the edited scalars not a byte moves: lines without a placeholder are
    # identical, and edited lines differ only by the substitution (plus quotes for a
    # plain scalar that would otherwise read as a number).
    old_lines, new_lines = text.splitlines(keepends=True), result.text.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    for old, new in zip(old_lines, new_lines):
        if "${" not in old:
            assert old == new
        else:
            expected = PLACEHOLDER.sub(lambda m: str(ports[m.group(1).lower()]) if m.group(0) != "${KEPT}" else m.group(0), old)
            assert new in (expected, _quoted_value(expected)), (old, new)


def _quoted_value(line: str) -> str:
    head, sep, rest = line.partition(": ") if ": " in line else line.partition("- ")
    value, comment = (rest.split("  #", 1) + [""])[:2]
    tail = value.rstrip("\n")
    return f'{head}{sep}"{tail}"' + (f"  #{comment}" if comment else "\n")


@settings(max_examples=40, deadline=None)
@given(lab=labs, missing=st.sampled_from(NAMES))
def test_rewrite_refuses_a_placeholder_without_port(lab: tuple, missing: str) -> None:
    tags, smart = lab
    text = render(tags, smart)
    ports = {name: 2000 + i for i, name in enumerate(NAMES) if name != missing}
    if missing in analyse(text).placeholders:
        with pytest.raises(InvalidInput) as caught:
            rewrite_ports(text, ports)
        assert caught.value.field == "ports"
        assert caught.value.reason.startswith("unresolved placeholder ${")
    else:
        assert analyse(rewrite_ports(text, ports).text).placeholders == frozenset()
