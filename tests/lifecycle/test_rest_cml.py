"""The happy path through the real CML REST client, against the local CML-shaped server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.cml.rest import CmlRestClient
from domain.instance import InstanceState, ScoreReport
from processors.instances import InstanceController
from processors.ports.cml import CmlEndpoint
from tests.cml.conftest import fast_rest_settings
from tests.cml.fake_cml_server import RunningFakeCml
from tests.lifecycle.conftest import World

S = InstanceState


@pytest.fixture(scope="module")
def fake_server() -> Iterator[RunningFakeCml]:
    server = RunningFakeCml().start()
    yield server
    server.stop()


def test_a_graded_lab_lives_and_ends_on_a_cml_over_http(tmp_path: Path, fake_server: RunningFakeCml) -> None:
    fake = fake_server.fake
    fake.reset()
    client = CmlRestClient(fast_rest_settings())
    world = World(tmp_path, client)  # type: ignore[arg-type]

    def endpoint(worker_id: str, ip: str) -> CmlEndpoint:  # every worker's CML is the fake
        return CmlEndpoint(worker_id, fake_server.base_url, fake.username, fake.password)

    controller = InstanceController(world.store, client, world.artifacts, world.clock, endpoint,
                                    checkpoints=world.checkpoints)

    async def life() -> None:
        instance_id = world.book(start_in=None, minutes=30)
        world.instantiate(instance_id)
        await controller.run_pass()
        instance = world.instance(instance_id)
        assert instance.state is S.READY, world.events(instance_id)
        assert list(fake.labs) == [instance.cml_lab_id]
        assert fake.labs[instance.cml_lab_id].title == instance_id
        lab = fake.labs[instance.cml_lab_id]
        keys = {lab.nodes[node_id].spec.label: node_keys[0] for node_id, node_keys in lab.console_keys.items()}
        assert {c["node"]: c["key"] for c in instance.user_session["consoles"]} == keys and keys

        world.login(instance_id)
        world.clock.advance(timedelta(minutes=30))
        await controller.run_pass()
        instance = world.instance(instance_id)
        assert instance.state is S.GRADING
        assert instance.grading_session["nodes"] == ["PC1", "R1"]

        instance.complete_grading(ScoreReport(score=1, max_score=2, cut_score=1, passed=True), world.ctx("grader:g"))
        world.store.save(instance)
        await controller.run_pass()
        assert world.instance(instance_id).state is S.TERMINATED
        assert fake.labs == {}
        assert fake.calls("DELETE", f"labs/{instance.cml_lab_id}") == 1
        await client.aclose()

    try:
        asyncio.run(life())
    finally:
        world.close()
