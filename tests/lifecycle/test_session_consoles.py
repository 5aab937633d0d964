"""Console keys belong in the user session, but a lab that booted is READY even when CML
cannot list its consoles at that moment: the session then lists none."""

from __future__ import annotations

from typing import Any

from domain.instance import InstanceState
from processors.ports.cml import CmlEndpoint, CmlUnavailable, NodeConsole
from tests.lifecycle.conftest import World


class ConsolesDown:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def consoles(self, worker: CmlEndpoint, lab_id: str) -> list[NodeConsole]:
        raise CmlUnavailable(worker.worker_id, "502 while listing consoles")


def test_a_booted_lab_is_ready_without_consoles_when_cml_cannot_list_them(world: World) -> None:
    instance_id = world.book()
    world.instantiate(instance_id)
    world.run(world.controller(ConsolesDown(world.cml)))  # type: ignore[arg-type]
    instance = world.instance(instance_id)
    assert instance.state is InstanceState.READY
    assert instance.user_session is not None and instance.user_session["consoles"] == []
    assert instance.user_session["devices"]  # the rest of the session is there
