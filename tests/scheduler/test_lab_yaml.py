"""The per-definition rewrite template gives exactly the domain's rewrite, for every sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from domain.lab_yaml import rewrite_ports
from processors.scheduler.lab_yaml import InstanceLabYaml

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
SMALL = ["ccna-basic-routing", "ospf-multiarea"]  # the 40-node one takes seconds per domain rewrite


def sample(name: str) -> tuple[str, list[str]]:
    spec = YAML(typ="safe", pure=True).load((SAMPLES / name / "definition.yaml").read_text())
    return (SAMPLES / name / spec["lab_yaml"]).read_text(), [p["name"] for p in spec["port_template"]]


@pytest.mark.parametrize("name", SMALL)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_the_template_rewrite_equals_the_domain_rewrite(name: str, data: st.DataObject) -> None:
    text, names = sample(name)
    ports = dict(zip(names, data.draw(st.lists(st.integers(1000, 65535), min_size=len(names), max_size=len(names),
                                               unique=True)), strict=True))
    rewriter = InstanceLabYaml(artifacts=None, load=lambda _: None)  # type: ignore[arg-type]
    assert rewriter.rewrite("sha", text, ports) == rewrite_ports(text, ports).text
    other = {n: p + 1 if p < 65535 else p - 1 for n, p in ports.items()}
    if len(set(other.values())) == len(other):
        assert rewriter.rewrite("sha", text, other) == rewrite_ports(text, other).text  # from the cache


def test_a_sentinel_already_in_the_text_is_avoided() -> None:
    text, names = sample("ccna-basic-routing")
    text = text.replace("  title: ", "  title: 59999 59998 59997 ", 1)
    ports = {name: 2000 + n for n, name in enumerate(names)}
    assert InstanceLabYaml(None, lambda _: None).rewrite("x", text, ports) == rewrite_ports(text, ports).text  # type: ignore[arg-type]
