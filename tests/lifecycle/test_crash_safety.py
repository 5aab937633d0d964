"""Kill the controller after every single step (a CML call, a save, a checkpoint) and start
a fresh one over the same store and the same CML: each scenario must end as it would have
without the crash, with exactly one lab for a live instance and none for a finished one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from domain.instance import InstanceState, LabletInstance, ScoreReport
from processors.instances import InstanceController
from tests.lifecycle.conftest import Crash, Fuse, World, fused_controller, instant_cml

S = InstanceState


class Process:
    """The controller process: dies when the fuse blows, and is restarted at once."""

    def __init__(self, world: World, crash_at: int | None) -> None:
        self.world = world
        self.fuse = Fuse(crash_at)
        self.controller: InstanceController = fused_controller(world, self.fuse)
        self.crashes = 0

    def run(self, passes: int = 2) -> None:
        for _ in range(passes):
            try:
                self.world.run(self.controller)
            except Crash:
                self.crashes += 1
                self.fuse = Fuse(None)
                self.controller = fused_controller(self.world, self.fuse)
                self.world.run(self.controller)

    @property
    def steps(self) -> int:
        return self.fuse.count


def assert_one_lab(world: World, instance_id: str) -> None:
    assert list(world.labs().values()) == [instance_id]


def assert_no_lab_and_no_hold(world: World, instance_id: str) -> None:
    assert world.labs() == {}
    assert instance_id not in world.worker().ledger


def full_life(world: World, process: Process) -> None:
    instance_id = world.book(start_in=timedelta(minutes=15), minutes=60)
    world.instantiate(instance_id)
    process.run()
    assert world.instance(instance_id).state is S.READY
    assert_one_lab(world, instance_id)

    world.clock.advance(timedelta(minutes=16))
    world.login(instance_id)
    process.run()
    assert world.instance(instance_id).state is S.RUNNING
    assert_one_lab(world, instance_id)

    world.clock.advance(timedelta(minutes=60))
    process.run()
    instance = world.instance(instance_id)
    assert instance.state is S.GRADING
    assert_one_lab(world, instance_id)

    instance.complete_grading(ScoreReport(score=9, max_score=10, cut_score=7, passed=True), world.ctx("grader:g"))
    world.store.save(instance)
    process.run()
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.termination_reason == "completed"
    assert_no_lab_and_no_hold(world, instance_id)
    names = world.events(instance_id)
    for once in ("InstanceReady", "CollectionStarted", "GradingStarted", "InstanceStopped", "InstanceArchived",
                 "InstanceTerminated"):
        assert names.count(once) == 1, (once, names)


def terminated_while_ready(world: World, process: Process) -> None:
    """An admin terminates a READY lab (the API's one save: terminate + release)."""
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    process.run()
    assert_one_lab(world, instance_id)
    instance: LabletInstance = world.instance(instance_id)
    worker = world.worker()
    instance.terminate("admin", world.ctx("admin:adm"))
    worker.release(instance_id, world.ctx("admin:adm"), reason="terminated")
    world.store.save(instance, worker)
    process.run()
    assert_no_lab_and_no_hold(world, instance_id)


def failing_boots(world: World, process: Process) -> None:
    """Every boot times out: three retries, then max_retries_exceeded."""
    instance_id = world.book(start_in=None)
    world.instantiate(instance_id)
    for _ in range(8):
        process.run()
        world.clock.advance(timedelta(minutes=5))
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.termination_reason == "max_retries_exceeded"
    assert instance.retry_count == 3
    assert world.events(instance_id).count("InstantiationStarted") == 4
    assert_no_lab_and_no_hold(world, instance_id)


def stopped_and_restarted(world: World, process: Process) -> None:
    """Stopped on request, started again: the same lab runs again, never a second one."""
    instance_id = world.book(start_in=None, minutes=60)
    world.instantiate(instance_id)
    process.run()
    world.login(instance_id)
    instance = world.instance(instance_id)
    instance.request_stop("user_request", world.ctx("user:alice"))
    world.store.save(instance)
    process.run()
    assert world.instance(instance_id).state is S.STOPPED
    assert_one_lab(world, instance_id)
    instance = world.instance(instance_id)
    instance.restart(world.ctx("admin:adm"), reason="admin_request")
    world.store.save(instance)
    process.run()
    assert_one_lab(world, instance_id)
    lab = world.cml._labs[world.worker_id][world.instance(instance_id).cml_lab_id]  # type: ignore[attr-defined]
    assert lab.snapshot(0.0).booted


SCENARIOS: dict[str, tuple[Callable[[World, Process], None], dict[str, float]]] = {
    "full_life": (full_life, {}),
    "terminated_while_ready": (terminated_while_ready, {}),
    "failing_boots": (failing_boots, {"boot_failure_rate": 1.0}),
    "stopped_and_restarted": (stopped_and_restarted, {}),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_crash_after_any_step_changes_nothing_in_the_outcome(name: str, tmp_path: Path) -> None:
    scenario, cml_settings = SCENARIOS[name]
    baseline = World(tmp_path / "baseline", instant_cml(**cml_settings))
    clean = Process(baseline, crash_at=None)
    scenario(baseline, clean)
    total = clean.steps
    baseline.close()
    assert total > 10, "the scenario should have many steps to crash at"
    for crash_at in range(1, total + 1):
        world = World(tmp_path / f"crash-{crash_at}", instant_cml(**cml_settings))
        process = Process(world, crash_at)
        try:
            scenario(world, process)
        except AssertionError as error:
            raise AssertionError(f"{name}: crash after step {crash_at} of {total}: {error}") from error
        finally:
            world.close()
        assert process.crashes == 1, f"{name}: the fuse at {crash_at} did not blow"
