"""Reconciliation: CML against the log, at start and periodically."""

from __future__ import annotations

import asyncio

from domain.instance import InstanceState
from processors.instances import MemoryCheckpoints
from tests.lifecycle.conftest import WORKER_IP, World, endpoint_for

S = InstanceState


def import_lab(world: World, title: str) -> str:
    lab = "lab: {version: 0.3.0, title: t}\nnodes:\n  - {id: n0, label: r1, node_definition: iosv, x: 0, y: 0, " \
          "interfaces: []}\nlinks: []\n"
    return asyncio.run(world.cml.import_lab(endpoint_for(world.worker_id, WORKER_IP), lab, title))


def test_the_lab_of_a_terminated_instance_found_on_cml_is_deleted_and_live_labs_are_kept(world: World) -> None:
    live_id = world.book(start_in=None)
    world.instantiate(live_id)
    world.run(world.controller())
    ended_id = world.book(start_in=None)
    instance = world.instance(ended_id)
    instance.terminate("cancelled", world.ctx("user:alice"))
    world.store.save(instance)
    # e.g. the lab of an instance terminated while the controller was down, whose termination
    # is behind the checkpoint; and a lab nobody at LRM knows about
    orphan = import_lab(world, ended_id)
    stranger = import_lab(world, "someone's own lab")
    world.checkpoints.save_checkpoint("instance-controller", world.store.max_position())

    controller = world.controller()
    asyncio.run(controller.start())
    labs = world.labs()
    assert orphan not in labs
    assert stranger in labs  # not LRM's to delete: reported
    assert world.instance(live_id).cml_lab_id in labs

    report = asyncio.run(controller.reconcile())
    assert report.workers == 1 and report.deleted == []
    assert report.unexplained == {world.worker_id: [stranger]}


def test_a_termination_after_the_checkpoint_is_cleaned_up_by_a_fresh_controller(world: World) -> None:
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    world.run(world.controller())
    assert len(world.labs()) == 1
    # the controller is down; an admin terminates the lab (without releasing the hold)
    instance = world.instance(instance_id)
    instance.terminate("admin", world.ctx("admin:adm"))
    terminated_at = world.store.save(instance)
    fresh = world.controller()
    world.run(fresh)
    assert world.labs() == {}
    assert instance_id not in world.worker().ledger  # released by the cleanup
    assert world.checkpoints.load_checkpoint("instance-controller") >= terminated_at


def test_the_checkpoint_never_passes_a_termination_whose_lab_is_not_deleted(world: World) -> None:
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    world.run(world.controller())
    instance = world.instance(instance_id)
    instance.terminate("admin", world.ctx("admin:adm"))
    position = world.store.save(instance)

    class Down:
        """A CML that answers nothing."""

        def __getattr__(self, name: str):  # noqa: ANN204
            async def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                from processors.ports.cml import CmlUnavailable

                raise CmlUnavailable(args[0].worker_id, "down")

            return fail

    checkpoints = MemoryCheckpoints()
    controller = world.controller(cml=Down())  # type: ignore[arg-type]
    controller.checkpoints = checkpoints
    world.run(controller)
    assert checkpoints.load_checkpoint("instance-controller") < position
    assert len(world.labs()) == 1
