"""The behaviour every ``CmlGateway`` shares, run against the simulated CML and the REST client
(the latter over real HTTP against the local CML-shaped server)."""

from __future__ import annotations

import pytest

from processors.ports.cml import (
    CmlEndpoint,
    CmlGateway,
    CmlLabNotFound,
    CmlRejected,
    LabStatus,
    NodeState,
)
from tests.cml.conftest import Harness, lab_yaml

BOOT_TIMEOUT = 600.0
MISSING_LAB = "00000000-0000-4000-8000-00000000dead"


def test_import_defines_the_lab_on_core(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(3), title="instance-a")
        state = await gateway.lab_state(worker, lab_id)
        assert state.status is LabStatus.DEFINED_ON_CORE
        assert state.converged and not state.booted
        assert state.nodes == {label: NodeState.DEFINED_ON_CORE for label in ("r1", "r2", "r3")}
        assert await gateway.list_labs(worker) == [lab_id]

    cml.run(scenario)


def test_full_lifecycle_start_boot_collect_stop_wipe_delete(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(3), title="instance-b")
        await gateway.start_lab(worker, lab_id)
        assert (await gateway.lab_state(worker, lab_id)).status is LabStatus.STARTED

        booted = await gateway.wait_until_booted(worker, lab_id, timeout=BOOT_TIMEOUT)
        assert booted.booted
        assert set(booted.nodes.values()) == {NodeState.BOOTED}

        configs = await gateway.node_configs(worker, lab_id)
        assert sorted(configs) == ["r1", "r2", "r3"]
        assert "hostname r2\n" in configs["r2"]
        assert "interface GigabitEthernet0/1\n description to r3 GigabitEthernet0/0" in configs["r2"]

        await gateway.stop_lab(worker, lab_id)
        stopped = await gateway.lab_state(worker, lab_id)
        assert stopped.status is LabStatus.STOPPED and stopped.converged

        await gateway.wipe_lab(worker, lab_id)
        wiped = await gateway.lab_state(worker, lab_id)
        assert wiped.status is LabStatus.DEFINED_ON_CORE and wiped.converged

        await gateway.delete_lab(worker, lab_id)
        assert await gateway.list_labs(worker) == []
        with pytest.raises(CmlLabNotFound):
            await gateway.lab_state(worker, lab_id)

    cml.run(scenario)


def test_delete_tears_down_a_running_lab_in_order(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(2), title="instance-c")
        await gateway.start_lab(worker, lab_id)
        await gateway.wait_until_booted(worker, lab_id, timeout=BOOT_TIMEOUT)
        await gateway.delete_lab(worker, lab_id)
        assert lab_id not in await gateway.list_labs(worker)

    cml.run(scenario)
    if cml.fake is not None:  # on the wire: stop, then wipe, then delete
        order = [m for m, p in cml.fake.requests if p.endswith(("/stop", "/wipe")) or m == "DELETE"]
        assert order == ["PUT", "PUT", "DELETE"]
        assert [p.rsplit("/", 1)[1] for m, p in cml.fake.requests if m == "PUT"][-2:] == ["stop", "wipe"]


def test_delete_is_idempotent(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(1), title="instance-d")
        await gateway.delete_lab(worker, lab_id)
        await gateway.delete_lab(worker, lab_id)
        await gateway.delete_lab(worker, MISSING_LAB)

    cml.run(scenario)


def test_wipe_is_refused_while_the_lab_runs(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(2), title="instance-e")
        await gateway.start_lab(worker, lab_id)
        with pytest.raises(CmlRejected) as refused:
            await gateway.wipe_lab(worker, lab_id)
        assert refused.value.status == 400
        assert (await gateway.lab_state(worker, lab_id)).status is LabStatus.STARTED

    cml.run(scenario)


def test_stop_and_wipe_of_a_never_started_lab_are_accepted(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(2), title="instance-f")
        await gateway.stop_lab(worker, lab_id)
        await gateway.wipe_lab(worker, lab_id)
        assert (await gateway.lab_state(worker, lab_id)).status is LabStatus.DEFINED_ON_CORE

    cml.run(scenario)


def test_find_lab_by_title_supports_idempotent_imports(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        assert await gateway.find_lab_by_title(worker, "instance-g") is None
        lab_g = await gateway.import_lab(worker, lab_yaml(1, title="ignored"), title="instance-g")
        lab_h = await gateway.import_lab(worker, lab_yaml(1), title="instance-h")
        assert await gateway.find_lab_by_title(worker, "instance-g") == lab_g
        assert await gateway.find_lab_by_title(worker, "instance-h") == lab_h
        assert await gateway.find_lab_by_title(worker, "ignored") is None

    cml.run(scenario)


@pytest.mark.parametrize(
    "bad_yaml",
    [
        "lab: {version: 0.3.0}\nnodes: []\n",  # links missing
        "lab: {title: x}\nnodes: []\nlinks: []\n",  # lab.version missing
        "lab: {version: 0.3.0}\nnodes: []\nlinks: []\nowner: me\n",  # extra key
        "lab: {version: 0.3.0}\nnodes: [{id: n0, node_definition: iosv}]\n"
        "links: [{id: l0, n1: n0, i1: i0, n2: n9, i2: i0}]\n",  # dangling link
        "lab: [unclosed\n",  # not YAML
    ],
)
def test_invalid_topologies_are_rejected_and_create_nothing(cml: Harness, bad_yaml: str) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        with pytest.raises(CmlRejected) as refused:
            await gateway.import_lab(worker, bad_yaml, title="instance-bad")
        assert refused.value.status == 400
        assert await gateway.list_labs(worker) == []

    cml.run(scenario)


def test_unknown_labs_raise_lab_not_found(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        for call in (gateway.start_lab, gateway.lab_state, gateway.stop_lab, gateway.node_configs):
            with pytest.raises(CmlLabNotFound) as missing:
                await call(worker, MISSING_LAB)
            assert missing.value.lab_id == MISSING_LAB

    cml.run(scenario)


def test_waiting_for_boot_of_a_lab_that_was_not_started_is_refused(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(1), title="instance-i")
        with pytest.raises(CmlRejected) as refused:
            await gateway.wait_until_booted(worker, lab_id, timeout=BOOT_TIMEOUT)
        assert refused.value.status == 409

    cml.run(scenario)


STORED_AND_SWITCH = (
    "  - {id: s0, label: sw, node_definition: unmanaged_switch, x: 0, y: 100, interfaces: []}\n"
    "  - {id: c0, label: edge, node_definition: csr1000v, x: 0, y: 200, interfaces: [],"
    " configuration: [{name: Main, content: \"hostname edge\\n\"}]}\n"
)


def test_node_configs_report_stored_configs_until_nodes_boot(cml: Harness) -> None:
    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(1, extra_nodes=STORED_AND_SWITCH), title="instance-j")
        assert await gateway.node_configs(worker, lab_id) == {"edge": "hostname edge\n"}

        await gateway.start_lab(worker, lab_id)
        await gateway.wait_until_booted(worker, lab_id, timeout=BOOT_TIMEOUT)
        configs = await gateway.node_configs(worker, lab_id)
        assert sorted(configs) == ["edge", "r1"]  # the unmanaged switch has no config to extract
        assert configs["edge"] == "hostname edge\n"

    cml.run(scenario)


def test_running_nodes_have_console_keys_that_change_on_restart(cml: Harness) -> None:
    switch = "  - {id: s0, label: sw, node_definition: unmanaged_switch, x: 0, y: 100}\n"

    async def scenario(gateway: CmlGateway, worker: CmlEndpoint) -> None:
        lab_id = await gateway.import_lab(worker, lab_yaml(2, extra_nodes=switch), title="instance-consoles")
        assert await gateway.consoles(worker, lab_id) == []  # nothing runs yet
        await gateway.start_lab(worker, lab_id)
        await gateway.wait_until_booted(worker, lab_id, timeout=BOOT_TIMEOUT)
        first = await gateway.consoles(worker, lab_id)
        assert sorted((c.node, c.line) for c in first) == [("r1", 0), ("r2", 0)]  # the switch has no console
        assert len({c.key for c in first}) == 2
        assert await gateway.consoles(worker, lab_id) == first  # stable while the nodes run

        await gateway.stop_lab(worker, lab_id)
        assert await gateway.consoles(worker, lab_id) == []
        await gateway.start_lab(worker, lab_id)
        await gateway.wait_until_booted(worker, lab_id, timeout=BOOT_TIMEOUT)
        again = await gateway.consoles(worker, lab_id)
        assert {c.node for c in again} == {"r1", "r2"} and not {c.key for c in again} & {c.key for c in first}

    cml.run(scenario)
