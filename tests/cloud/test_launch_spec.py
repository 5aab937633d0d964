from __future__ import annotations

from types import SimpleNamespace

import pytest

from processors.ports.cloud import LaunchSpec, managed_tags


def test_from_template_takes_what_a_launch_needs() -> None:
    template = SimpleNamespace(
        name="cml-large",
        instance_type="m5zn.metal",
        ami_pattern="CML-2.9.*",
        ami_version="2.9.1",
        region="us-east-1",
        tags={"Team": "labs"},
        startup_minutes=20,
        restart_minutes=5,
    )
    spec = LaunchSpec.from_template(template)
    assert spec == LaunchSpec("m5zn.metal", "CML-2.9.*", "2.9.1", "us-east-1", {"Team": "labs"}, 20.0, 5.0)
    template.tags["Team"] = "changed"
    assert spec.tags == {"Team": "labs"}


def test_from_template_defaults() -> None:
    spec = LaunchSpec.from_template(SimpleNamespace(instance_type="t3.large", ami_pattern="CML-*"))
    assert (spec.ami_version, spec.region, spec.tags, spec.startup_minutes) == (None, None, {}, 20.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"instance_type": "", "ami_pattern": "CML-*"},
        {"instance_type": "t3.large", "ami_pattern": ""},
        {"instance_type": "t3.large", "ami_pattern": "CML-*", "startup_minutes": -1},
    ],
)
def test_invalid_specs_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LaunchSpec(**fields)  # type: ignore[arg-type]


def test_lrm_tags_always_win() -> None:
    tags = managed_tags({"WorkerId": "x", "Name": "mine"}, {"ManagedBy": "y"}, "Worker-1")
    assert tags == {"WorkerId": "Worker-1", "Name": "mine", "ManagedBy": "lablet-resource-manager"}


def test_the_seeded_templates_make_launch_specs() -> None:
    from pathlib import Path

    from domain.worker_template import parse_templates_yaml

    seed = Path(__file__).resolve().parents[2] / "config" / "worker-templates.yaml"
    specs = [LaunchSpec.from_template(t) for t in parse_templates_yaml(seed.read_text())]
    assert specs and all(spec.ami_pattern and spec.instance_type and spec.region for spec in specs)
    assert all(spec.ami_version for spec in specs)  # "" in a template means no minimum: None
