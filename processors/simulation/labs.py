"""What the simulator publishes for a workload's definition: fields and a synthetic CML lab.

A chain of ``node_count`` IOSv routers (on a grid of 50 per row); the first carries one tag per port placeholder
(``${PORT_<NAME>}``) when the run rewrites lab YAML, none otherwise (the controller then
imports the text as it is).
"""

from __future__ import annotations

from typing import Any

from processors.simulation.workload import DefinitionProfile


def definition_fields(profile: DefinitionProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "version": "1.0.0",
        "form_qualified_name": f"Simulation / {profile.name}",
        "resource_requirements": {
            "cpu_cores": profile.cpu_cores, "memory_gb": profile.memory_gb, "storage_gb": profile.storage_gb,
            "nested_virt": True, "ami": {"name_pattern": "CML-2.*", "min_version": "2.8.0"},
        },
        "license_affinity": list(profile.license_affinity),
        "port_template": [{"name": port, "protocol": "telnet"} for port in profile.ports],
        "max_duration_minutes": profile.max_duration_minutes,
        "grading_rules_uri": f"sim://grading/{profile.name}/rules.yaml" if profile.grading else None,
    }


def synthetic_lab_yaml(profile: DefinitionProfile, *, placeholders: bool) -> str:
    lines = ["lab:", "  version: 0.3.0", f"  title: {profile.name}", "  description: simulated lab", "nodes:"]
    for n in range(profile.node_count):
        lines += [f"  - id: n{n}", f"    label: R{n + 1}", "    node_definition: iosv", f"    x: {(n % 50) * 100}",
                  f"    y: {(n // 50) * 100}", f"    configuration: hostname R{n + 1}", "    tags:", "      - routers"]
        if placeholders and n == 0:
            lines += [f'      - "${{PORT_{port.upper()}}}"' for port in profile.ports]
        lines += ["    interfaces:", "      - id: i0", "        label: GigabitEthernet0/0", "        slot: 0",
                  "        type: physical", "      - id: i1", "        label: GigabitEthernet0/1", "        slot: 1",
                  "        type: physical"]
    lines.append("links:")
    for n in range(profile.node_count - 1):
        lines += [f"  - id: l{n}", f"    n1: n{n}", "    i1: i1", f"    n2: n{n + 1}", "    i2: i0"]
    if profile.node_count < 2:
        lines[-1] = "links: []"
    return "\n".join(lines) + "\n"
