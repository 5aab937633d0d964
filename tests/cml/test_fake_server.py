"""The fake server itself keeps to the documented CML API (/work/shared/notes/cml-api.md),
so the REST client is tested against CML's shapes rather than against its own assumptions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from adapters.cml.rest import CmlRestClient
from adapters.cml.topology import parse_topology
from processors.ports.cml import CmlEndpoint, NodeState
from tests.cml.conftest import fast_rest_settings, lab_yaml
from tests.cml.fake_cml_server import FakeCml, RunningFakeCml

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def http(fake_cml: FakeCml, fake_cml_server: RunningFakeCml) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{fake_cml_server.base_url}api/v0/") as client:
        yield client


def login(http: httpx.Client) -> dict[str, str]:
    token = http.post("authenticate", json={"username": "admin", "password": "secret"}).json()
    assert isinstance(token, str)
    return {"Authorization": f"Bearer {token}"}


def test_system_information_needs_no_token(http: httpx.Client) -> None:
    info = http.get("system_information").json()
    assert info["ready"] is True and info["version"].startswith("2.10")


def test_calls_without_a_valid_token_get_401(http: httpx.Client) -> None:
    assert http.get("labs").status_code == 401
    assert http.get("labs", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert http.get("authentication", headers=login(http)).json()["username"] == "admin"


def test_wrong_password_gets_cmls_403_body(http: httpx.Client) -> None:
    answer = http.post("authenticate", json={"username": "admin", "password": "nope"})
    assert answer.status_code == 403
    assert answer.json() == {"code": 403, "description": "Authentication failed!"}


def test_unknown_lab_gets_cmls_404_body(http: httpx.Client) -> None:
    answer = http.get(f"labs/{MISSING}/state", headers=login(http))
    assert answer.status_code == 404
    assert answer.json() == {"code": 404, "description": f"Lab not found: {MISSING}"}


def test_lab_shapes(http: httpx.Client) -> None:
    auth = login(http)
    imported = http.post("import", params={"title": "t"}, content=lab_yaml(2), headers=auth).json()
    assert set(imported) == {"id", "warnings"}
    lab_id = imported["id"]
    assert http.get("labs", headers=auth).json() == [lab_id]
    assert http.get(f"labs/{lab_id}", headers=auth).json()["lab_title"] == "t"
    assert http.get(f"labs/{lab_id}/state", headers=auth).json() == "DEFINED_ON_CORE"
    assert http.get(f"labs/{lab_id}/check_if_converged", headers=auth).json() is True
    elements = http.get(f"labs/{lab_id}/lab_element_state", headers=auth).json()
    assert set(elements) == {"nodes", "links", "interfaces"}
    node_ids = http.get(f"labs/{lab_id}/nodes", headers=auth).json()
    assert set(node_ids) == set(elements["nodes"])
    topology = http.get(f"labs/{lab_id}/topology", headers=auth).json()
    assert topology["lab"]["title"] == "t" and len(topology["nodes"]) == 2
    assert http.put(f"labs/{lab_id}/start", headers=auth).status_code == 204
    assert http.get(f"labs/{lab_id}/state", headers=auth).json() == "STARTED"
    assert http.delete(f"labs/{lab_id}", headers=auth).status_code == 400
    node = http.get(f"labs/{lab_id}/nodes/{MISSING}", headers=auth)
    assert node.json() == {"code": 404, "description": f"Node not found: {MISSING}"}


def test_element_states_are_keyed_by_the_topologys_uuids(http: httpx.Client) -> None:
    auth = login(http)
    lab_id = http.post("import", content=lab_yaml(3), headers=auth).json()["id"]
    topology = http.get(f"labs/{lab_id}/topology", headers=auth).json()
    elements = http.get(f"labs/{lab_id}/lab_element_state", headers=auth).json()
    interfaces = {i["id"] for node in topology["nodes"] for i in node["interfaces"]}
    assert set(elements["nodes"]) == {node["id"] for node in topology["nodes"]}
    assert set(elements["interfaces"]) == interfaces and len(interfaces) == 6
    assert set(elements["links"]) == {link["id"] for link in topology["links"]}
    for link in topology["links"]:
        assert {link["interface_a"], link["interface_b"]} <= interfaces
        assert {link["node_a"], link["node_b"]} <= set(elements["nodes"])
    assert all(str(uuid.UUID(key, version=4)) == key for key in interfaces | set(elements["links"]))


def test_lab_object_carries_owner_autostart_and_node_staging(http: httpx.Client) -> None:
    auth = login(http)
    lab_id = http.post("import", content=lab_yaml(1), headers=auth).json()["id"]
    lab = http.get(f"labs/{lab_id}", headers=auth).json()
    assert lab["owner_fullname"] == "CML Administrator" and lab["owner_username"] == "admin"
    assert lab["autostart"] == {"enabled": False, "priority": None, "delay": None}
    assert set(lab["node_staging"]) == {"enabled", "start_remaining", "abort_on_failure"}


def test_unknown_routes_and_methods_answer_cmls_error_body(http: httpx.Client) -> None:
    auth = login(http)
    missing = http.get("no_such_route", headers=auth)
    assert missing.status_code == 404 and set(missing.json()) == {"code", "description"}
    wrong_method = http.post("labs/x/state", headers=auth)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 405
    bad_query = http.get(f"labs/{MISSING}/nodes/{MISSING}/consoles/first/log", headers=auth)
    assert bad_query.status_code == 422 and "console_id" in bad_query.json()["description"]


def test_download_is_importable_again(http: httpx.Client) -> None:
    auth = login(http)
    lab_id = http.post("import", content=lab_yaml(2), headers=auth).json()["id"]
    exported = http.get(f"labs/{lab_id}/download", headers=auth).text
    topology = parse_topology(exported)
    assert [node.label for node in topology.nodes] == ["r1", "r2"] and len(topology.links) == 1
    assert http.post("import", content=exported, headers=auth).status_code == 200


def test_logged_out_tokens_are_refused(http: httpx.Client) -> None:
    auth = login(http)
    assert http.delete("logout", headers=auth).json() is True
    assert http.get("labs", headers=auth).status_code == 401


def test_client_reads_node_states_from_lab_element_state_when_nodes_lack_them(
    fake_cml: FakeCml, rest_worker: CmlEndpoint
) -> None:
    fake_cml.node_objects_have_state = False
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> dict[str, NodeState]:
        try:
            lab_id = await client.import_lab(rest_worker, lab_yaml(2), "instance-elements")
            await client.start_lab(rest_worker, lab_id)
            return dict((await client.wait_until_booted(rest_worker, lab_id, timeout=5)).nodes)
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == {"r1": NodeState.BOOTED, "r2": NodeState.BOOTED}
    assert fake_cml.calls("GET", "/lab_element_state") >= 1


@pytest.mark.parametrize("operational", [True, False])
def test_client_reads_console_keys_with_or_without_operational_data(
    fake_cml: FakeCml, rest_worker: CmlEndpoint, operational: bool
) -> None:
    fake_cml.node_objects_have_operational = operational  # older controllers: ask keys/console per node
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> list[tuple[str, str]]:
        try:
            lab_id = await client.import_lab(rest_worker, lab_yaml(2), "instance-keys")
            await client.start_lab(rest_worker, lab_id)
            await client.wait_until_booted(rest_worker, lab_id, timeout=5)
            return sorted((c.node, c.key) for c in await client.consoles(rest_worker, lab_id))
        finally:
            await client.aclose()

    consoles = asyncio.run(scenario())
    lab = next(iter(fake_cml.labs.values()))
    expected = sorted((lab.nodes[node_id].spec.label, keys[0]) for node_id, keys in lab.console_keys.items())
    assert consoles == expected and len(consoles) == 2
    assert (fake_cml.calls("GET", "/keys/console") == 2) is not operational


def test_our_client_logs_in_again_when_its_token_has_aged_out(fake_cml: FakeCml, rest_worker: CmlEndpoint) -> None:
    fake_cml.token_lifetime_seconds = 3600
    client = CmlRestClient(fast_rest_settings())

    async def scenario() -> None:
        try:
            lab_id = await client.import_lab(rest_worker, lab_yaml(1), "instance-aged")
            fake_cml.advance(3600)  # an hour later on the controller: the JWT has expired
            assert (await client.lab_state(rest_worker, lab_id)).nodes == {"r1": NodeState.DEFINED_ON_CORE}
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert fake_cml.calls("POST", "/authenticate") == 2
