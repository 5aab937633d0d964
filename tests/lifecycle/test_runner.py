"""The controller on its own thread and loop, as ``lablet serve`` runs it."""

from __future__ import annotations

import time
from collections.abc import Callable

from domain.instance import InstanceState
from processors.instances import InstanceController
from processors.instances.runner import InstanceControllerThread
from tests.lifecycle.conftest import World, instant_cml

S = InstanceState


def eventually(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_background_controller_brings_a_lab_up_and_stops_cleanly(world: World) -> None:
    closed: list[InstanceController] = []

    async def on_stop(controller: InstanceController) -> None:
        closed.append(controller)

    # the CML is built inside the thread, like the REST client must be
    thread = InstanceControllerThread(lambda: world.controller(cml=instant_cml()), idle_wait=0.05, on_stop=on_stop)
    thread.start()
    try:
        instance_id = world.book(start_in=None)
        world.instantiate(instance_id)
        thread.notify()
        assert eventually(lambda: world.instance(instance_id).state is S.READY)
        assert thread.running and thread.last_error is None
    finally:
        thread.stop()
    assert not thread.running
    assert closed == [thread.controller]
