"""Node routes: list and read, state, node-level start/stop/wipe, convergence, configuration
extraction, consoles (log and key), layer-3 addresses and the node's interfaces."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response

from adapters.cml.lab_machine import ACTIVE
from processors.ports.cml import NodeState
from tests.cml.fake_cml import catalog
from tests.cml.fake_cml.errors import CmlHttpError
from tests.cml.fake_cml.lab import FakeLab
from tests.cml.fake_cml.routes_labs import refusal_is_400
from tests.cml.fake_cml.state import FakeCml

API = "/api/v0"
NODE = f"{API}/labs/{{lab_id}}/nodes/{{node_id}}"


def register(app: FastAPI, fake: FakeCml) -> None:
    @app.get(f"{API}/labs/{{lab_id}}/nodes")
    async def nodes(lab_id: str, data: bool = False, operational: bool = False,
                    exclude_configurations: bool = False) -> list[Any]:
        lab, now = fake.lab(lab_id), fake.now()
        if not data:
            return list(lab.nodes)
        return [
            lab.node_object(node_id, now, not exclude_configurations, state=fake.node_objects_have_state,
                            operational=operational and fake.node_objects_have_operational,
                            configuration_as_string=fake.config_as_string)
            for node_id in lab.nodes
        ]

    @app.get(NODE)
    async def node(lab_id: str, node_id: str, exclude_configurations: bool = True,
                   operational: bool = False) -> dict[str, Any]:
        lab = fake.lab(lab_id)
        fake.node_of(lab, node_id)
        return lab.node_object(node_id, fake.now(), not exclude_configurations, state=fake.node_objects_have_state,
                               operational=operational and fake.node_objects_have_operational,
                               configuration_as_string=fake.config_as_string)

    @app.get(f"{NODE}/state")
    async def node_state(lab_id: str, node_id: str) -> dict[str, str]:
        lab = fake.lab(lab_id)
        node = lab.nodes[fake.node_of(lab, node_id)]
        node.advance(fake.now())
        progress = {NodeState.BOOTED: "Booted", NodeState.STARTED: "Booting"}.get(node.state, "Not running")
        return {"state": str(node.state), "progress": progress}

    @app.put(f"{NODE}/state/start", status_code=204)
    async def start_node(lab_id: str, node_id: str) -> Response:
        lab = fake.lab(lab_id)
        refusal_is_400(lambda: lab.start(fake.now(), fake.transition_seconds, only=[fake.node_of(lab, node_id)]))
        return Response(status_code=204)

    @app.put(f"{NODE}/state/stop", status_code=204)
    async def stop_node(lab_id: str, node_id: str) -> Response:
        lab = fake.lab(lab_id)
        refusal_is_400(lambda: lab.stop(fake.now(), fake.transition_seconds, only=[fake.node_of(lab, node_id)]))
        return Response(status_code=204)

    @app.put(f"{NODE}/wipe_disks", status_code=204)
    async def wipe_node(lab_id: str, node_id: str) -> Response:
        lab = fake.lab(lab_id)
        refusal_is_400(lambda: lab.wipe(fake.now(), fake.transition_seconds, only=[fake.node_of(lab, node_id)]))
        return Response(status_code=204)

    @app.get(f"{NODE}/check_if_converged")
    async def node_converged(lab_id: str, node_id: str) -> bool:
        lab = fake.lab(lab_id)
        node = lab.nodes[fake.node_of(lab, node_id)]
        node.advance(fake.now())
        return node.settled

    @app.put(f"{NODE}/extract_configuration")
    async def extract_configuration(lab_id: str, node_id: str) -> str:
        lab = fake.lab(lab_id)
        fake.node_of(lab, node_id)
        refusal_is_400(lambda: lab.machine.extract_configuration(node_id, fake.now()))
        return "Configuration extracted"

    @app.get(f"{NODE}/consoles/{{console_id}}/log")
    async def console_log(lab_id: str, node_id: str, console_id: int, lines: int | None = None) -> str:
        lab = fake.lab(lab_id)
        fake.node_of(lab, node_id)
        if not 0 <= console_id < _serial_consoles(lab, node_id):
            raise CmlHttpError(400, f"Serial port {console_id} does not exist on node {node_id}")
        log = lab.console_log(node_id, fake.now())
        if lines:
            log = "".join(log.splitlines(keepends=True)[-lines:])
        return log

    @app.get(f"{NODE}/keys/console")
    async def console_key(lab_id: str, node_id: str, line: int = 0) -> str:
        lab = fake.lab(lab_id)
        node = lab.nodes[fake.node_of(lab, node_id)]
        node.advance(fake.now())
        keys = lab.console_keys.get(node_id, [])
        if node.state not in ACTIVE:
            raise CmlHttpError(400, f"Node is not running: {node_id}")
        if not 0 <= line < len(keys):
            raise CmlHttpError(400, f"Serial port {line} does not exist on node {node_id}")
        return keys[line]

    @app.get(f"{NODE}/layer3_addresses")
    async def node_layer3_addresses(lab_id: str, node_id: str) -> dict[str, Any]:
        lab = fake.lab(lab_id)
        node = lab.nodes[fake.node_of(lab, node_id)]
        return {"name": node.spec.label, "interfaces": {}}

    @app.get(f"{NODE}/interfaces")
    async def node_interfaces(lab_id: str, node_id: str, data: bool = False, operational: bool = False) -> list[Any]:
        lab, now = fake.lab(lab_id), fake.now()
        fake.node_of(lab, node_id)
        mine = [interface for interface in lab.interfaces.values() if interface.node_id == node_id]
        if not data:
            return [interface.id for interface in mine]
        return [lab.interface_object(interface, now, operational) for interface in mine]


def _serial_consoles(lab: FakeLab, node_id: str) -> int:
    return catalog.definition(lab.nodes[node_id].spec.node_definition).serial_consoles
