"""Lab routes: list, tiles, import, read, lab-wide start/stop/wipe, delete, and the lab reads
clients make while a lab runs (state, convergence, element states, statistics, events,
layer-3 addresses, interfaces, resource pools, the YAML download)."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from adapters.cml.lab_machine import LabRefused
from adapters.cml.topology import TopologyInvalid, parse_topology
from tests.cml.fake_cml.errors import CmlHttpError
from tests.cml.fake_cml.lab import FakeLab
from tests.cml.fake_cml.state import FakeCml

API = "/api/v0"
LAB = f"{API}/labs/{{lab_id}}"


def register(app: FastAPI, fake: FakeCml) -> None:
    @app.get(f"{API}/labs")
    async def labs(show_all: bool = False) -> list[str]:
        return list(fake.labs)

    @app.get(f"{API}/populate_lab_tiles")
    async def populate_lab_tiles() -> dict[str, Any]:
        now = fake.now()
        return {"lab_tiles": {lab_id: _tile(lab, now) for lab_id, lab in fake.labs.items()}}

    @app.post(f"{API}/import")
    async def import_lab(request: Request, title: str | None = None) -> dict[str, Any]:
        text = (await request.body()).decode()  # YAML or JSON, whatever the Content-Type says
        try:
            topology = parse_topology(text, title=title)
        except TopologyInvalid as error:
            raise CmlHttpError(400, str(error)) from error
        lab = FakeLab.imported(topology, fake.owner, fake.now(), fake.rng)
        fake.labs[lab.id] = lab
        return {"id": lab.id, "warnings": None}

    @app.get(LAB)
    async def get_lab(lab_id: str) -> dict[str, Any]:
        return fake.lab(lab_id).lab_object(fake.now())

    @app.delete(LAB, status_code=204)
    async def delete_lab(lab_id: str) -> Response:
        lab = fake.lab(lab_id)
        refusal_is_400(lambda: lab.machine.check_deletable(fake.now()))
        del fake.labs[lab_id]
        return Response(status_code=204)

    @app.get(f"{LAB}/state")
    async def lab_state(lab_id: str) -> str:
        return str(fake.lab(lab_id).machine.status(fake.now()))

    @app.get(f"{LAB}/check_if_converged")
    async def check_if_converged(lab_id: str) -> bool:
        return fake.lab(lab_id).machine.converged(fake.now())

    @app.get(f"{LAB}/lab_element_state")
    async def lab_element_state(lab_id: str) -> dict[str, Any]:
        return fake.lab(lab_id).element_state(fake.now())

    @app.get(f"{LAB}/topology")
    async def topology(lab_id: str, exclude_configurations: bool = False) -> dict[str, Any]:
        return fake.lab(lab_id).topology(fake.now(), not exclude_configurations)

    for action in ("start", "stop", "wipe"):
        app.put(f"{LAB}/{action}", status_code=204)(_lab_action(fake, action))

    @app.get(f"{LAB}/simulation_stats")
    async def simulation_stats(lab_id: str) -> dict[str, Any]:
        return fake.lab(lab_id).simulation_stats(fake.now())

    @app.get(f"{LAB}/events")
    async def events(lab_id: str) -> list[dict[str, Any]]:
        return list(fake.lab(lab_id).events)

    @app.get(f"{LAB}/layer3_addresses")
    async def layer3_addresses(lab_id: str) -> dict[str, Any]:
        lab = fake.lab(lab_id)  # addresses are snooped only behind external connectors: none here
        return {node_id: {"name": node.spec.label, "interfaces": {}} for node_id, node in lab.nodes.items()}

    @app.delete(f"{LAB}/layer3_addresses", status_code=204)
    async def clear_layer3_addresses(lab_id: str) -> Response:
        fake.lab(lab_id)
        return Response(status_code=204)

    @app.get(f"{LAB}/resource_pools")
    async def lab_resource_pools(lab_id: str) -> list[str]:
        fake.lab(lab_id)
        return []

    @app.get(f"{LAB}/interfaces")
    async def interfaces(lab_id: str, data: bool = True, operational: bool = False) -> list[Any]:
        lab, now = fake.lab(lab_id), fake.now()
        if not data:
            return list(lab.interfaces)
        return [lab.interface_object(interface, now, operational) for interface in lab.interfaces.values()]

    @app.get(f"{LAB}/links")
    async def links(lab_id: str, data: bool = False) -> list[Any]:
        lab, now = fake.lab(lab_id), fake.now()
        if not data:
            return list(lab.links)
        return [lab.link_object(link, now) for link in lab.links.values()]

    @app.get(f"{LAB}/download")
    async def download(lab_id: str) -> PlainTextResponse:
        text = yaml.safe_dump(fake.lab(lab_id).download(), sort_keys=False)
        return PlainTextResponse(text, media_type="application/x-yaml")


def _lab_action(fake: FakeCml, action: str) -> Any:
    async def handler(lab_id: str) -> Response:
        lab = fake.lab(lab_id)
        operation = {"start": lab.start, "stop": lab.stop, "wipe": lab.wipe}[action]
        refusal_is_400(lambda: operation(fake.now(), fake.transition_seconds))
        return Response(status_code=204)

    handler.__name__ = f"{action}_lab"
    return handler


def refusal_is_400(call: Any) -> None:
    try:
        call()
    except LabRefused as refusal:
        raise CmlHttpError(400, refusal.description) from refusal


def _tile(lab: FakeLab, now: float) -> dict[str, Any]:
    tile = lab.lab_object(now)
    tile["topology"] = {"nodes": [{"id": node_id, "label": node.spec.label, "state": str(node.state)}
                                  for node_id, node in lab.nodes.items()],
                        "links": [{"id": link.id} for link in lab.links.values()]}
    return tile


