"""LabletDefinition: immutable versions, no-op republish, patch bumps, placeholders, deprecation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

from domain.base import named_stream_id
from domain.context import CommandContext
from domain.definition import DefinitionSpec, LabletDefinition
from domain.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from domain.lab_yaml import analyse
from domain.semver import Version

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
CTX = CommandContext(at=T0, actor="author@example.com")
LATER = CommandContext(at=T0 + timedelta(days=1), actor="other@example.com")

LAB_YAML = """\
lab:
  title: OSPF basics
  version: 0.2.2
  description: two routers
nodes:
  - id: n0
    label: r1
    node_definition: iosv
    x: 0
    y: 0
    tags: ["serial:${PORT_SERIAL_1}"]
    interfaces: []
  - id: n1
    label: r2
    node_definition: iosv
    x: 100
    y: 0
    tags: ["vnc:${VNC_1}"]
    interfaces: []
links: []
"""
SHA_A = "a" * 64
SHA_B = "b" * 64


@dataclass(frozen=True)
class Analysis:
    title: str = "OSPF basics"
    node_count: int = 2
    placeholders: frozenset[str] = frozenset({"serial_1", "vnc_1"})


def spec_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "ccna-ospf",
        "form_qualified_name": "Exam CCNA v1.1 LAB 1.3a",
        "lab_yaml_uri": "artifacts://definitions/ccna-ospf/lab.yaml",
        "resource_requirements": {"cpu_cores": 4, "memory_gb": 8, "storage_gb": 20,
                                  "ami": {"name_pattern": "CML-2.9.*", "min_version": "2.9.0"}},
        "license_affinity": ["PERSONAL", "ENTERPRISE"],
        "port_template": [{"name": "serial_1", "protocol": "serial"}, {"name": "vnc_1", "protocol": "vnc"}],
        "max_duration_minutes": 120,
        "grading_rules_uri": "s3://grading/ccna-ospf.yaml",
        "owner_notification": "owner@example.com",
    }
    data.update(overrides)
    return data


def spec(**overrides: Any) -> DefinitionSpec:
    return DefinitionSpec.from_dict(spec_data(**overrides))


def created(**overrides: Any) -> LabletDefinition:
    definition = LabletDefinition.create(spec(**overrides), SHA_A, Analysis(), CTX)
    definition.collect_events()
    return definition


def test_first_publication_with_the_real_lab_analysis() -> None:
    sha = hashlib.sha256(LAB_YAML.encode()).hexdigest()
    definition = LabletDefinition.create(spec(), sha, analyse(LAB_YAML), CTX)
    assert definition.id == named_stream_id("LabletDefinition", "ccna-ospf")
    version = definition.version_for_new_instance(None)
    assert (version.version, version.node_count, version.title) == ("1.0.0", 2, "OSPF basics")
    assert (version.created_by, version.created_at) == ("author@example.com", T0)
    assert version.grading_enabled and version.port_names == ["serial_1", "vnc_1"]
    assert [e.event_name for e in definition.collect_events()] == ["DefinitionRegistered",
                                                                  "DefinitionVersionPublished"]


def test_first_version_may_be_explicit() -> None:
    assert created(version="0.3.0").latest_version == "0.3.0"


def test_same_yaml_and_fields_is_a_no_op() -> None:
    definition = created()
    first = definition.latest
    assert definition.publish(spec(), SHA_A, Analysis(), LATER) is first
    assert definition.publish(spec(version="1.0.0"), SHA_A, Analysis(), LATER) is first
    assert definition.collect_events() == []


PUBLISH_CASES = [
    # what changes, explicit version, expected new version
    ({"sha": SHA_B}, None, "1.0.1"),
    ({"max_duration_minutes": 90}, None, "1.0.1"),
    ({"sha": SHA_B}, "1.1.0", "1.1.0"),
    ({"sha": SHA_B}, "2.0.0", "2.0.0"),
    ({}, "1.0.1", "1.0.1"),  # an explicit new number publishes even unchanged content
]


@pytest.mark.parametrize(("change", "version", "expected"), PUBLISH_CASES)
def test_publishing_a_change(change: dict[str, Any], version: str | None, expected: str) -> None:
    definition = created()
    sha = change.pop("sha", SHA_A)
    published = definition.publish(spec(version=version, **change), sha, Analysis(), LATER)
    assert published.version == expected == definition.latest_version
    (event,) = definition.collect_events()
    assert (event.version, event.previous_version) == (expected, "1.0.0")
    assert definition.versions["1.0.0"].lab_yaml_sha256 == SHA_A  # old version untouched
    assert published.created_by == "other@example.com"


@pytest.mark.parametrize("version", ["1.0.0", "0.9.9", "0.10.0"])
def test_explicit_versions_must_grow(version: str) -> None:
    definition = created()
    with pytest.raises(InvalidInput) as error:
        definition.publish(spec(version=version), SHA_B, Analysis(), LATER)
    assert error.value.field == "version"


def test_patch_bumps_follow_the_latest_not_the_count() -> None:
    definition = created(version="2.4.9")
    assert definition.publish(spec(), SHA_B, Analysis(), LATER).version == "2.4.10"


def test_each_placeholder_needs_a_port_template_entry() -> None:
    analysis = Analysis(placeholders=frozenset({"serial_1", "vnc_1", "console_2"}))
    with pytest.raises(InvalidInput, match="console_2") as error:
        LabletDefinition.create(spec(), SHA_A, analysis, CTX)
    assert error.value.field == "port_template"


def test_a_lab_without_nodes_is_refused() -> None:
    with pytest.raises(InvalidInput):
        LabletDefinition.create(spec(), SHA_A, Analysis(node_count=0, placeholders=frozenset()), CTX)


INVALID_SPECS = [
    ({"port_template": [{"name": "serial_1", "protocol": "rdp"}]}, "port_template"),
    ({"port_template": [{"name": "serial_1", "protocol": "serial"}] * 2}, "port_template"),
    ({"port_template": [{"name": "Serial 1", "protocol": "serial"}]}, "port_template"),
    ({"license_affinity": []}, "license_affinity"),
    ({"license_affinity": ["GOLD"]}, "license_affinity"),
    ({"max_duration_minutes": 0}, "max_duration_minutes"),
    ({"warm_pool_depth": -1}, "warm_pool_depth"),
    ({"version": "1.0"}, "version"),
    ({"version": "v1.0.0"}, "version"),
    ({"name": "CCNA"}, "name"),
    ({"form_qualified_name": ""}, "form_qualified_name"),
    ({"resource_requirements": {"cpu_cores": 0, "memory_gb": 8, "storage_gb": 20}}, "resource_requirements.cpu_cores"),
    ({"resource_requirements": {"cpu_cores": 1, "memory_gb": 8}}, "resource_requirements.storage_gb"),
    ({"resource_requirements": {"cpu_cores": 1, "memory_gb": 8, "storage_gb": 1, "ami": {"min_version": "x"}}},
     "resource_requirements.ami.min_version"),
    ({"grading_rules_uri": ""}, "grading_rules_uri"),
    ({"unknown": 1}, "unknown"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID_SPECS, ids=[f for _, f in INVALID_SPECS])
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        spec(**overrides)
    assert error.value.field == field


def test_bad_sha256_is_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        LabletDefinition.create(spec(), "not-a-sha", Analysis(), CTX)
    assert error.value.field == "lab_yaml_sha256"


def test_defaults_no_grading_no_warm_pool_every_licence() -> None:
    definition = created(grading_rules_uri=None)
    version = definition.latest
    assert version is not None
    assert not version.grading_enabled and version.warm_pool_depth == 0
    assert [t.value for t in spec_without_affinity().license_affinity] == ["PERSONAL", "ENTERPRISE", "EVALUATION"]


def spec_without_affinity() -> DefinitionSpec:
    data = spec_data()
    del data["license_affinity"]
    return DefinitionSpec.from_dict(data)


def test_version_for_new_instance() -> None:
    definition = created()
    definition.publish(spec(), SHA_B, Analysis(), LATER)
    assert definition.version_for_new_instance(None).version == "1.0.1"
    assert definition.version_for_new_instance("1.0.0").lab_yaml_sha256 == SHA_A
    for unknown in ("3.0.0", "latest"):
        with pytest.raises(NotFound):
            definition.version_for_new_instance(unknown)


def test_deprecated_definitions_accept_no_instances_and_no_versions() -> None:
    definition = created()
    definition.deprecate(LATER, reason="replaced by ccna-ospf-v2")
    with pytest.raises(Conflict):
        definition.version_for_new_instance(None)
    with pytest.raises(Conflict):
        definition.version_for_new_instance("1.0.0")
    with pytest.raises(IllegalTransition):
        definition.publish(spec(), SHA_B, Analysis(), LATER)
    with pytest.raises(IllegalTransition):
        definition.deprecate(LATER)
    assert definition.versions["1.0.0"].version == "1.0.0"  # versions stay readable


def test_publishing_under_another_name_is_refused() -> None:
    with pytest.raises(InvalidInput):
        created().publish(spec(name="other"), SHA_B, Analysis(), LATER)


def test_events_round_trip_through_json_and_rebuild_the_same_definition() -> None:
    definition = LabletDefinition.create(spec(), SHA_A, Analysis(), CTX)
    definition.publish(spec(version="1.2.0"), SHA_B, Analysis(), LATER)
    definition.deprecate(LATER, reason="old")
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    mapper = Mapper(transcoder=transcoder)
    rebuilt = None
    for event in definition.collect_events():
        rebuilt = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(rebuilt)
    assert rebuilt == definition
    assert rebuilt.versions["1.2.0"] == definition.versions["1.2.0"]


SEMVER_ORDER = ["0.0.1", "0.1.0", "0.9.9", "0.10.0", "1.0.0", "1.0.10", "1.2.0", "10.0.0"]


def test_semver_order_is_numeric() -> None:
    parsed = [Version.parse(v) for v in SEMVER_ORDER]
    assert sorted(parsed) == parsed and [str(v) for v in parsed] == SEMVER_ORDER
    assert str(Version.parse("1.9.9").bump_patch()) == "1.9.10"


@pytest.mark.parametrize("text", ["1", "1.0", "01.0.0", "1.0.0-rc1", "a.b.c", ""])
def test_semver_rejects(text: str) -> None:
    with pytest.raises(InvalidInput):
        Version.parse(text)


def test_versions_are_immutable_values() -> None:
    version = created().latest
    assert version is not None
    with pytest.raises(AttributeError):
        version.node_count = 3  # type: ignore[misc]
    assert replace(version, version="9.9.9").version == "9.9.9" and version.version == "1.0.0"
