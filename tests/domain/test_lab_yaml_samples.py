"""The shipped sample definitions: valid, consistent, and rewritable byte for byte."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from domain.lab_yaml import PLACEHOLDER, analyse, rewrite_ports
from domain.ledger import Reservation, ReservationLedger
from domain.resources import Resources

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
EXPECTED = {
    # name: (node count, license affinity)
    "ccna-basic-routing": (2, ["PERSONAL", "ENTERPRISE"]),
    "ospf-multiarea": (12, ["PERSONAL", "ENTERPRISE"]),
    "datacenter-fabric": (40, ["ENTERPRISE"]),
}
SPEC_KEYS = {
    "name", "form_qualified_name", "resource_requirements", "license_affinity", "port_template",
    "max_duration_minutes", "grading_rules_uri", "warm_pool_depth",
}


def sample(name: str) -> tuple[dict, str]:
    directory = SAMPLES / name
    spec = YAML(typ="safe", pure=True).load((directory / "definition.yaml").read_text())
    return spec, (directory / spec["lab_yaml"]).read_text()


def test_every_sample_directory_is_covered() -> None:
    assert sorted(p.name for p in SAMPLES.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_definition_matches_its_lab(name: str) -> None:
    spec, lab_yaml = sample(name)
    node_count, affinity = EXPECTED[name]
    assert SPEC_KEYS <= set(spec)
    assert spec["name"] == name
    assert spec["license_affinity"] == affinity
    Resources.from_dict(spec["resource_requirements"])
    analysis = analyse(lab_yaml)
    assert analysis.node_count == node_count
    assert analysis.lab_version == "0.3.0"
    assert analysis.warnings == ()
    # Every placeholder has a port in the template and every templated port is used.
    assert analysis.placeholders == {port["name"] for port in spec["port_template"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_round_trip_allocate_rewrite_analyse(name: str) -> None:
    spec, lab_yaml = sample(name)
    start = datetime(2026, 6, 1, 9, tzinfo=timezone.utc)
    end = start + timedelta(minutes=spec["max_duration_minutes"])
    ledger = ReservationLedger(Resources(96, 512, 2000), 500, (2000, 2999))
    ledger.add(Reservation("earlier", Resources(1, 1, 1), 1, {"x": 2000, "y": 2002}, start, end))
    names = [port["name"] for port in spec["port_template"]]
    ports = ledger.allocate_ports(names, start, end)

    result = rewrite_ports(lab_yaml, ports)

    assert analyse(result.text).placeholders == frozenset()
    assert analyse(result.text).node_count == analyse(lab_yaml).node_count
    # Byte preservation: the output is the input with exactly the placeholder
    # substrings replaced; nothing else moved.
    expected_text = PLACEHOLDER.sub(lambda m: str(ports[m.group(1).lower()]), lab_yaml)
    assert result.text == expected_text
    assert {r.port for r in result.replacements} == set(ports.values())
    assert all(lab_yaml.count(r.placeholder) for r in result.replacements)
