"""What only the simulated CML does: delays that scale with lab size and time scale, seeded
failure injection, boot failures, per-worker isolation — all on a virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapters.cml.simulated import SimulatedCml, SimulatedCmlSettings
from processors.ports.cml import (
    CmlEndpoint,
    CmlLabNotFound,
    CmlRejected,
    CmlUnavailable,
    CmlWaitTimeout,
    LabStatus,
    NodeState,
)
from tests.cml.conftest import FakeClock, lab_yaml

WORKER = CmlEndpoint("worker-1", "https://10.0.0.1/", "admin", "secret")
OTHER_WORKER = CmlEndpoint("worker-2", "https://10.0.0.2/", "admin", "secret")


def simulated(clock: FakeClock, **settings: Any) -> SimulatedCml:
    return SimulatedCml(SimulatedCmlSettings(**settings), clock=clock, sleep=clock.sleep)


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


@pytest.mark.parametrize("node_count", [1, 3, 8])
@pytest.mark.parametrize("time_scale", [1.0, 0.01])
def test_import_and_boot_take_time_proportional_to_node_count(node_count: int, time_scale: float) -> None:
    clock = FakeClock()
    cml = simulated(clock, import_seconds_per_node=0.5, boot_seconds_per_node=30.0, time_scale=time_scale)

    async def scenario() -> tuple[float, float]:
        before = clock.now
        lab_id = await cml.import_lab(WORKER, lab_yaml(node_count), "instance")
        imported = clock.now
        await cml.start_lab(WORKER, lab_id)
        await cml.wait_until_booted(WORKER, lab_id, timeout=3600)
        return imported - before, clock.now - imported

    import_time, boot_time = run(scenario)
    assert import_time == pytest.approx(0.5 * node_count * time_scale)
    assert boot_time == pytest.approx(30.0 * node_count * time_scale)


def test_nodes_go_through_the_launch_queue_before_booting() -> None:
    clock = FakeClock()
    cml = simulated(clock, boot_seconds_per_node=10.0)

    async def scenario() -> list[dict[str, NodeState]]:
        lab_id = await cml.import_lab(WORKER, lab_yaml(3), "instance")
        await cml.start_lab(WORKER, lab_id)
        seen = []
        for _ in range(4):
            seen.append(dict((await cml.lab_state(WORKER, lab_id)).nodes))
            clock.advance(10.0)
        return seen

    Q, S, B = NodeState.QUEUED, NodeState.STARTED, NodeState.BOOTED
    assert run(scenario) == [
        {"r1": S, "r2": Q, "r3": Q},
        {"r1": B, "r2": S, "r3": Q},
        {"r1": B, "r2": B, "r3": S},
        {"r1": B, "r2": B, "r3": B},
    ]


def test_wipe_is_refused_while_a_stop_is_still_in_progress() -> None:
    clock = FakeClock()
    cml = simulated(clock, stop_seconds_per_node=5.0, time_scale=1.0)

    async def scenario() -> None:
        lab_id = await cml.import_lab(WORKER, lab_yaml(2), "instance")
        await cml.start_lab(WORKER, lab_id)
        await cml.wait_until_booted(WORKER, lab_id, timeout=3600)
        lab = cml._lab(WORKER, lab_id)
        lab.stop(clock.now, 5.0)  # asynchronous stop, as CML's PUT stop
        assert (await cml.lab_state(WORKER, lab_id)).status is LabStatus.STARTED
        with pytest.raises(CmlRejected):
            await cml.wipe_lab(WORKER, lab_id)
        clock.advance(10.0)
        await cml.wipe_lab(WORKER, lab_id)

    run(scenario)


def outcomes(seed: int, attempts: int = 24) -> list[bool]:
    clock = FakeClock()
    cml = simulated(clock, import_failure_rate=0.5, seed=seed, time_scale=0.0)

    async def scenario() -> list[bool]:
        results = []
        for index in range(attempts):
            try:
                await cml.import_lab(WORKER, lab_yaml(1), f"instance-{index}")
                results.append(True)
            except CmlUnavailable as failure:
                assert failure.retryable
                results.append(False)
        return results

    return run(scenario)


def test_failure_injection_is_reproducible_with_a_seed() -> None:
    first, again, other = outcomes(seed=7), outcomes(seed=7), outcomes(seed=8)
    assert first == again
    assert first != other
    assert 0 < sum(first) < len(first)


def test_failed_imports_create_nothing() -> None:
    clock = FakeClock()
    cml = simulated(clock, import_failure_rate=1.0)

    async def scenario() -> list[str]:
        with pytest.raises(CmlUnavailable):
            await cml.import_lab(WORKER, lab_yaml(2), "instance")
        return await cml.list_labs(WORKER)

    assert run(scenario) == []


def test_a_failed_start_leaves_the_lab_defined() -> None:
    clock = FakeClock()
    cml = simulated(clock, start_failure_rate=1.0)

    async def scenario() -> LabStatus:
        lab_id = await cml.import_lab(WORKER, lab_yaml(2), "instance")
        with pytest.raises(CmlUnavailable):
            await cml.start_lab(WORKER, lab_id)
        return (await cml.lab_state(WORKER, lab_id)).status

    assert run(scenario) is LabStatus.DEFINED_ON_CORE


def test_a_node_that_never_boots_makes_the_wait_time_out_after_the_timeout() -> None:
    clock = FakeClock()
    cml = simulated(clock, boot_failure_rate=1.0, boot_seconds_per_node=10.0, time_scale=0.5)

    async def scenario() -> float:
        lab_id = await cml.import_lab(WORKER, lab_yaml(2), "instance")
        await cml.start_lab(WORKER, lab_id)
        started = clock.now
        with pytest.raises(CmlWaitTimeout) as timed_out:
            await cml.wait_until_booted(WORKER, lab_id, timeout=600)
        last = timed_out.value.last
        assert last is not None and last.status is LabStatus.STARTED and not last.converged
        assert set(last.nodes.values()) == {NodeState.STARTED}
        return clock.now - started

    assert run(scenario) == pytest.approx(600 * 0.5)  # the timeout is in CML seconds too


def test_waits_wake_on_transitions_not_on_every_poll() -> None:
    clock = FakeClock()
    cml = simulated(clock, boot_seconds_per_node=30.0, poll_interval_seconds=5.0)

    async def scenario() -> None:
        lab_id = await cml.import_lab(WORKER, lab_yaml(2), "instance")
        await cml.start_lab(WORKER, lab_id)
        clock.sleeps.clear()
        await cml.wait_until_booted(WORKER, lab_id, timeout=3600)

    run(scenario)
    assert sum(clock.sleeps) == pytest.approx(60.0)
    assert max(clock.sleeps) <= 5.0  # never blind to a concurrent change for longer than a poll


def test_labs_are_kept_per_worker() -> None:
    clock = FakeClock()
    cml = simulated(clock, time_scale=0.0)

    async def scenario() -> None:
        lab_id = await cml.import_lab(WORKER, lab_yaml(1), "instance")
        assert await cml.list_labs(OTHER_WORKER) == []
        assert await cml.find_lab_by_title(OTHER_WORKER, "instance") is None
        with pytest.raises(CmlLabNotFound):
            await cml.lab_state(OTHER_WORKER, lab_id)
        assert await cml.list_labs(WORKER) == [lab_id]

    run(scenario)


def test_lab_ids_are_uuids_and_reproducible_with_a_seed() -> None:
    async def ids(seed: int) -> list[str]:
        cml = simulated(FakeClock(), seed=seed, time_scale=0.0)
        return [await cml.import_lab(WORKER, lab_yaml(1), f"i{n}") for n in range(3)]

    first = asyncio.run(ids(5))
    assert first == asyncio.run(ids(5))
    assert all(len(lab_id) == 36 and lab_id[14] == "4" for lab_id in first)


def test_time_scale_zero_runs_instantly_on_the_real_clock() -> None:
    cml = SimulatedCml(SimulatedCmlSettings(time_scale=0.0))

    async def scenario() -> bool:
        lab_id = await cml.import_lab(WORKER, lab_yaml(5), "instance")
        await cml.start_lab(WORKER, lab_id)
        state = await cml.wait_until_booted(WORKER, lab_id, timeout=60)
        await cml.delete_lab(WORKER, lab_id)
        return state.booted

    assert run(scenario)
