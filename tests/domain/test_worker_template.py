"""WorkerTemplate: spec validation, the aggregate's events, seeding rules, the shipped file."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from domain.base import named_stream_id
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput
from domain.worker_template import (
    LicenseType,
    WorkerTemplate,
    WorkerTemplateSpec,
    parse_templates_yaml,
    templates_to_seed,
)

ROOT = Path(__file__).resolve().parents[2]
CTX = CommandContext(at=datetime(2026, 3, 1, tzinfo=timezone.utc), actor="admin")


def spec_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "personal-standard",
        "instance_type": "m5zn.metal",
        "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500},
        "license_type": "PERSONAL",
        "max_nodes": 20,
        "ami_pattern": "CML-2.9.*",
        "region": "us-east-1",
        "port_range": {"start": 2000, "end": 2999},
        "hourly_cost": 3.96,
    }
    data.update(overrides)
    return data


def spec(**overrides: Any) -> WorkerTemplateSpec:
    return WorkerTemplateSpec.from_dict(spec_dict(**overrides))


def test_defaults() -> None:
    s = spec()
    assert (s.startup_minutes, s.restart_minutes, s.drain_timeout_hours, s.nested_virt, s.tags) == (20, 5, 4, True, {})
    assert s.license_type is LicenseType.PERSONAL and s.node_limit == 20
    assert s.matches_ami("CML-2.9.1") and not s.matches_ami("CML-2.8.0")


INVALID = [
    ({"port_range": {"start": 1999, "end": 2999}}, "port_range.start"),
    ({"port_range": {"start": 2000, "end": 10000}}, "port_range.end"),
    ({"port_range": {"start": 3000, "end": 3000}}, "port_range"),
    ({"port_range": {"start": 3000, "end": 2500}}, "port_range"),
    ({"port_range": {"start": 3000}}, "port_range"),
    ({"max_nodes": 21}, "max_nodes"),
    ({"license_type": "ENTERPRISE", "max_nodes": 501}, "max_nodes"),
    ({"max_nodes": 0}, "max_nodes"),
    ({"max_nodes": 2.5}, "max_nodes"),
    ({"license_type": "GOLD"}, "license_type"),
    ({"capacity": {"cpu_cores": 0, "memory_gb": 192, "storage_gb": 500}}, "capacity.cpu_cores"),
    ({"capacity": {"cpu_cores": 48, "memory_gb": -1, "storage_gb": 500}}, "capacity.memory_gb"),
    ({"capacity": {"cpu_cores": 48, "memory_gb": 192}}, "capacity"),
    ({"ami_pattern": ""}, "ami_pattern"),
    ({"ami_pattern": "CML-[2.9.*"}, "ami_pattern"),
    ({"name": ""}, "name"),
    ({"name": "Personal"}, "name"),
    ({"name": "-personal"}, "name"),
    ({"name": "personal_standard"}, "name"),
    ({"name": "a" * 201}, "name"),
    ({"hourly_cost": -1}, "hourly_cost"),
    ({"startup_minutes": 0}, "startup_minutes"),
    ({"drain_timeout_hours": 0}, "drain_timeout_hours"),
    ({"nested_virt": "yes"}, "nested_virt"),
    ({"tags": {"tier": 1}}, "tags"),
    ({"colour": "blue"}, "colour"),
    ({"region": ""}, "region"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        spec(**overrides)
    assert error.value.field == field


def test_missing_required_field() -> None:
    data = spec_dict()
    del data["region"]
    with pytest.raises(InvalidInput) as error:
        WorkerTemplateSpec.from_dict(data)
    assert error.value.field == "region"


def test_valid_edges() -> None:
    assert spec(name="a" * 200, port_range={"start": 2000, "end": 9999}).port_range.size == 8000
    assert spec(license_type="ENTERPRISE", max_nodes=500).node_limit == 500
    assert spec(license_type="evaluation").license_type is LicenseType.EVALUATION


def test_spec_round_trips_through_its_dict() -> None:
    s = spec(tags={"tier": "x"}, description="d", ami_version="2.9.0")
    assert WorkerTemplateSpec.from_dict(s.to_dict()) == s


def test_register_uses_a_stream_named_by_the_template_name() -> None:
    template = WorkerTemplate.register(spec(), CTX)
    assert template.id == named_stream_id("WorkerTemplate", "personal-standard") == WorkerTemplate.stream_id_for(
        "personal-standard")
    (event,) = template.collect_events()
    assert event.event_name == "WorkerTemplateRegistered" and event.spec["license_type"] == "PERSONAL"


def test_update_records_the_full_spec_and_the_changed_fields() -> None:
    template = WorkerTemplate.register(spec(), CTX)
    template.collect_events()
    assert template.update(spec(), CTX) == []
    assert template.collect_events() == []
    changed = template.update(spec(hourly_cost=4.5, max_nodes=10), CTX)
    (event,) = template.collect_events()
    assert changed == event.changed_fields == ["max_nodes", "hourly_cost"]
    assert event.spec == spec(hourly_cost=4.5, max_nodes=10).to_dict()
    assert template.spec.max_nodes == 10
    with pytest.raises(InvalidInput):
        template.update(spec(name="other"), CTX)


def test_remove_refused_twice_and_while_in_use() -> None:
    template = WorkerTemplate.register(spec(), CTX)
    with pytest.raises(Conflict, match="Worker-1"):
        template.remove(CTX, in_use_by=["Worker-1"])
    template.remove(CTX, reason="retired")
    assert template.removed
    with pytest.raises(IllegalTransition):
        template.remove(CTX)
    with pytest.raises(IllegalTransition):
        template.update(spec(hourly_cost=1.0), CTX)


def test_a_removed_name_can_be_registered_again_on_the_same_stream() -> None:
    template = WorkerTemplate.register(spec(), CTX)
    with pytest.raises(IllegalTransition):
        template.reregister(spec(), CTX)
    template.remove(CTX)
    template.reregister(spec(hourly_cost=5.0), CTX)
    assert not template.removed and template.spec.hourly_cost == 5.0
    events = template.collect_events()
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt == template
    assert [e.event_name for e in events] == [
        "WorkerTemplateRegistered", "WorkerTemplateRemoved", "WorkerTemplateReregistered"]


SEED_CASES = [
    # file names, existing names, expected created
    (["a", "b"], [], ["a", "b"]),
    (["a", "b"], ["a"], ["b"]),
    (["a", "b"], ["a", "b", "c"], []),
    ([], ["a"], []),
]


@pytest.mark.parametrize(("in_file", "existing", "created"), SEED_CASES)
def test_seeding_creates_unknown_names_and_never_overwrites(in_file: list[str], existing: list[str],
                                                            created: list[str]) -> None:
    specs = [spec_dict(name=name, hourly_cost=99.0) for name in in_file]
    assert [s.name for s in templates_to_seed(specs, existing)] == created


def test_seeding_refuses_duplicates_and_names_the_bad_entry() -> None:
    with pytest.raises(InvalidInput, match="duplicate"):
        templates_to_seed([spec_dict(), spec_dict()], [])
    with pytest.raises(InvalidInput) as error:
        templates_to_seed([spec_dict(name="ok"), spec_dict(max_nodes=99)], [])
    assert error.value.field == "templates[1].max_nodes"


def test_the_shipped_templates_file() -> None:
    specs = {s.name: s for s in parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())}
    assert set(specs) == {"personal-standard", "enterprise-large"}
    personal, enterprise = specs["personal-standard"], specs["enterprise-large"]
    for s in (personal, enterprise):
        assert s.instance_type == "m5zn.metal" and s.region == "us-east-1" and s.ami_pattern == "CML-2.9.*"
        assert (s.capacity.cpu_cores, s.capacity.memory_gb, s.capacity.storage_gb) == (48, 192, 500)
        assert (s.startup_minutes, s.restart_minutes) == (20, 5)
        assert 3 < s.hourly_cost < 5
    assert (personal.license_type, personal.max_nodes) == (LicenseType.PERSONAL, 20)
    assert (enterprise.license_type, enterprise.max_nodes) == (LicenseType.ENTERPRISE, 500)
    assert personal.port_range.end < enterprise.port_range.start


@pytest.mark.parametrize("text", ["templates: {", "just text", "templates: 3"])
def test_bad_templates_yaml(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_templates_yaml(text)
