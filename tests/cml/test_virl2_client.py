"""Cisco's own client, virl2-client 2.10, drives the fake CML through a whole lab life.

If the fake drifts from CML's shapes (link interface ids, nested interfaces, UUID-keyed element
states, error bodies...), the official client breaks here, not silently in our own client.
Delays are tiny: the fake moves one ``transition_seconds`` step per node and the client polls
convergence every ``convergence_wait_time``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import virl2_client
import yaml
from virl2_client.exceptions import APIError, LabNotFound

from tests.cml.conftest import lab_yaml
from tests.cml.fake_cml import FakeCml, RunningFakeCml

# ClientLibrary warns that it could prompt for missing settings when stdin is not a TTY; ours are all given.
pytestmark = pytest.mark.filterwarnings("ignore:Interactive inputs are deprecated:DeprecationWarning")

SINGLE_NODE = "lab: {version: 0.3.1, title: lonely}\nnodes:\n  - {id: n0, label: r1, node_definition: iosv, x: 0, y: 0}\nlinks: []\n"


@pytest.fixture
def client(fake_cml: FakeCml, fake_cml_server: RunningFakeCml) -> Iterator[virl2_client.ClientLibrary]:
    fake_cml.transition_seconds = 0.005
    library = virl2_client.ClientLibrary(
        fake_cml_server.base_url, fake_cml.username, fake_cml.password,
        allow_http=True, convergence_wait_time=0.01, convergence_wait_max_iter=500, raise_for_auth_failure=True,
    )
    yield library


def imported(client: virl2_client.ClientLibrary, topology: str, title: str | None = None) -> Any:
    lab = client.import_lab(topology, title=title)
    lab.wait_time = 0.01  # import_lab does not pass convergence_wait_time on to the lab (2.10.1)
    return lab


def test_a_whole_lab_life_with_links(client: virl2_client.ClientLibrary, fake_cml: FakeCml) -> None:
    lab = imported(client, lab_yaml(3), title="instance-life")
    assert lab.title == "instance-life"
    assert [node.label for node in lab.nodes()] == ["r1", "r2", "r3"]
    assert len(lab.links()) == 2 and len(lab.interfaces()) == 6
    first = lab.links()[0]
    assert {first.node_a.label, first.node_b.label} == {"r1", "r2"}
    assert first.interface_a.label == "GigabitEthernet0/1" and first.interface_b.label == "GigabitEthernet0/0"

    joined = virl2_client.ClientLibrary(
        client.url, fake_cml.username, fake_cml.password, allow_http=True, convergence_wait_time=0.01,
    ).join_existing_lab(lab.id)
    assert joined.title == "instance-life" and len(joined.links()) == 2
    details = joined.details()
    assert details["owner_fullname"] == fake_cml.fullname and "autostart" in details and "node_staging" in details

    lab.start()  # waits for convergence, as the official client does by default
    assert lab.state() == "STARTED" and lab.has_converged()
    lab.sync_states()
    assert {node.state for node in lab.nodes()} == {"BOOTED"}
    assert {link.state for link in lab.links()} == {"STARTED"}
    assert {interface.state for interface in lab.interfaces()} == {"STARTED"}
    assert all(node.is_booted() for node in lab.nodes())

    r1 = lab.get_node_by_label("r1")
    log = r1.console_logs(0)
    assert "Press RETURN to get started!" in log and log.startswith("|0|")
    key = r1.console_key(0)
    assert key in client._session.get("keys/console").json()

    for node in lab.nodes():
        node.extract_configuration()
    lab.sync(topology_only=False)  # the re-sync after extract that used to raise KeyError: 'interfaces'
    assert "hostname r1" in r1.configuration and "description to r2 GigabitEthernet0/0" in r1.configuration
    assert set(lab.statistics) >= {"nodes", "links", "interfaces"} and r1.cpu_usage >= 0
    assert lab.sync_events()
    exported = yaml.safe_load(lab.download())
    assert exported["lab"]["title"] == "instance-life" and len(exported["links"]) == 2

    lab.stop()
    assert lab.state() == "STOPPED"
    with pytest.raises(APIError):
        r1.console_key(0)  # no console while stopped
    lab.wipe()
    assert lab.state() == "DEFINED_ON_CORE"
    lab.remove()
    assert client.get_lab_list() == []
    with pytest.raises(LabNotFound):
        client.join_existing_lab(lab.id)


def test_a_node_without_links_gets_the_interfaces_cml_creates(client: virl2_client.ClientLibrary) -> None:
    lab = imported(client, SINGLE_NODE)
    interfaces = lab.get_node_by_label("r1").interfaces()
    assert [(i.label, i.type) for i in interfaces] == [("Loopback0", "loopback"), ("GigabitEthernet0/0", "physical")]


def test_node_level_start_stop_and_wipe(client: virl2_client.ClientLibrary) -> None:
    lab = imported(client, lab_yaml(2), title="instance-nodes")
    r1, r2 = lab.get_node_by_label("r1"), lab.get_node_by_label("r2")
    r1.start(wait=True)
    assert r1.is_booted() and r2.state == "DEFINED_ON_CORE"
    with pytest.raises(APIError, match="not stopped"):
        r1.wipe()
    r1.stop(wait=True)
    r1.wipe(wait=True)
    lab.sync_states()  # node states are cached for a second (auto_sync_interval)
    assert r1.state == "DEFINED_ON_CORE"


def test_the_official_client_re_authenticates_after_token_expiry(
    client: virl2_client.ClientLibrary, fake_cml: FakeCml
) -> None:
    lab = imported(client, lab_yaml(1), title="instance-expiry")
    fake_cml.expire_tokens()
    assert client.get_lab_list() == [lab.id]  # 401, a new login, the replayed call
    assert fake_cml.calls("POST", "/authenticate") == 2
    assert client.logout() is True
    assert fake_cml.tokens == {}
    assert client.get_lab_list() == [lab.id]  # logged out: the next call logs in again


def test_tokens_expire_after_their_lifetime(client: virl2_client.ClientLibrary, fake_cml: FakeCml) -> None:
    fake_cml.token_lifetime_seconds = 8 * 3600
    client.logout()
    assert client.get_lab_list() == []  # a fresh 8-hour token
    fake_cml.advance(8 * 3600 - 1)
    assert client.get_lab_list() == [] and fake_cml.calls("POST", "/authenticate") == 2
    fake_cml.advance(1)  # the lifetime is over: 401, re-login, replay
    assert client.get_lab_list() == [] and fake_cml.calls("POST", "/authenticate") == 3


def test_system_calls_the_client_makes(client: virl2_client.ClientLibrary, fake_cml: FakeCml) -> None:
    assert client.is_system_ready()
    assert client.get_system_health()["valid"] is True
    assert "all" in client.get_system_stats()
    assert client.resource_pool_management.resource_pools == {}
    fake_cml.ready = False
    assert client.is_system_ready(sleep=0) is False


def test_unknown_routes_and_labs_answer_in_cmls_error_shape(client: virl2_client.ClientLibrary) -> None:
    with pytest.raises(APIError) as missing_route:
        client._session.get("no_such_route")
    assert missing_route.value.response.json()["code"] == 404
    with pytest.raises(LabNotFound):
        client.join_existing_lab("00000000-0000-4000-8000-000000000000")


def test_bad_credentials_are_refused_at_connect(fake_cml: FakeCml, fake_cml_server: RunningFakeCml) -> None:
    with pytest.raises(virl2_client.InitializationError):
        virl2_client.ClientLibrary(fake_cml_server.base_url, fake_cml.username, "wrong",
                                   allow_http=True, raise_for_auth_failure=True)


def test_the_client_refuses_a_controller_too_old_for_it(fake_cml: FakeCml, fake_cml_server: RunningFakeCml) -> None:
    fake_cml.version = "2.6.1+build.3"
    with pytest.raises(virl2_client.InitializationError, match="Unsupported minor version"):
        virl2_client.ClientLibrary(fake_cml_server.base_url, fake_cml.username, fake_cml.password, allow_http=True)


def test_a_cml_2_9_controller_is_checked_the_2_9_way(fake_cml: FakeCml, fake_cml_server: RunningFakeCml) -> None:
    fake_cml.version = "2.9.1+build.5"
    library = virl2_client.ClientLibrary(fake_cml_server.base_url, fake_cml.username, fake_cml.password,
                                         allow_http=True, raise_for_auth_failure=True)
    assert fake_cml.calls("GET", "/authok") == 1 and fake_cml.calls("GET", "/authentication") == 0
    lab = imported(library, lab_yaml(2), title="instance-2-9")
    lab.start()
    assert lab.state() == "STARTED"
    assert library.get_system_health()["computes"].popitem()[1]["cpu_overload"] is None
