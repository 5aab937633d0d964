"""The simulated cloud on a fake clock: timings, failures, idempotency, the state rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from adapters.cloud.ami import Image
from adapters.cloud.simulated import BOOT_FAILURE_REASON, SimulatedCloud
from processors.ports.cloud import (
    AmiNotFound,
    CloudCapacityError,
    CloudError,
    CloudNotFound,
    CloudProvider,
    CloudState,
    LaunchSpec,
)
from tests.cloud.conftest import FakeClock, run

SPEC = LaunchSpec("m5zn.metal", "CML-2.9.*", startup_minutes=20, restart_minutes=5, tags={"Team": "labs"})


def cloud_on(clock: FakeClock, **options: object) -> SimulatedCloud:
    return SimulatedCloud(clock, **options)  # type: ignore[arg-type]


def state(cloud: SimulatedCloud, cloud_id: str) -> CloudState:
    return run(cloud.describe(cloud_id)).state


def test_it_is_a_cloud_provider(clock: FakeClock) -> None:
    assert isinstance(cloud_on(clock), CloudProvider)


@pytest.mark.parametrize("time_scale", [1.0, 60.0, 100.0])
def test_boot_takes_the_templates_startup_time_divided_by_the_time_scale(
    clock: FakeClock, time_scale: float
) -> None:
    cloud = cloud_on(clock, time_scale=time_scale, jitter=0.1)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    boot = timedelta(minutes=20) / time_scale
    assert vm.state is CloudState.PENDING and vm.private_ip is None
    clock.advance(seconds=(boot * 0.9).total_seconds() - 0.001)
    assert state(cloud, vm.cloud_id) is CloudState.PENDING
    clock.advance(seconds=(boot * 0.2).total_seconds())
    running = run(cloud.describe(vm.cloud_id))
    assert running.state is CloudState.RUNNING
    assert running.private_ip is not None and running.private_ip.startswith("10.")


def test_without_jitter_the_boot_time_is_exact(clock: FakeClock) -> None:
    cloud = cloud_on(clock, jitter=0.0, time_scale=60)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    assert cloud.next_change_at() == clock.now + timedelta(seconds=20)
    clock.advance(seconds=19.999)
    assert state(cloud, vm.cloud_id) is CloudState.PENDING
    clock.advance(seconds=0.001)
    assert state(cloud, vm.cloud_id) is CloudState.RUNNING
    assert cloud.next_change_at() is None


def test_restart_is_faster_than_startup(clock: FakeClock) -> None:
    cloud = cloud_on(clock, jitter=0.0)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    clock.advance(minutes=20)
    assert run(cloud.stop(vm.cloud_id)).state is CloudState.STOPPING
    clock.advance(seconds=60)
    assert state(cloud, vm.cloud_id) is CloudState.STOPPED
    assert run(cloud.start(vm.cloud_id)).state is CloudState.PENDING
    clock.advance(minutes=5)
    assert state(cloud, vm.cloud_id) is CloudState.RUNNING


def test_terminate_takes_a_little_time_and_is_idempotent(clock: FakeClock) -> None:
    cloud = cloud_on(clock, jitter=0.0, terminate_seconds=30)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    run(cloud.terminate(vm.cloud_id))
    assert state(cloud, vm.cloud_id) is CloudState.SHUTTING_DOWN
    run(cloud.terminate(vm.cloud_id))
    clock.advance(seconds=30)
    assert state(cloud, vm.cloud_id) is CloudState.TERMINATED
    run(cloud.terminate(vm.cloud_id))
    run(cloud.terminate("i-unknown"))
    assert state(cloud, vm.cloud_id) is CloudState.TERMINATED


def test_launch_is_idempotent_on_worker_id(clock: FakeClock) -> None:
    cloud = cloud_on(clock)
    first = run(cloud.launch(SPEC, "Worker-1"))
    clock.advance(minutes=3)
    again = run(cloud.launch(SPEC, "Worker-1"))
    other = run(cloud.launch(SPEC, "Worker-2"))
    assert again.cloud_id == first.cloud_id != other.cloud_id
    assert again.launched_at == first.launched_at
    assert len(run(cloud.list_managed())) == 2


def test_relaunch_after_termination_or_failure_is_a_fresh_vm(clock: FakeClock) -> None:
    cloud = cloud_on(clock, failure_probability=1.0, jitter=0.0)
    failed = run(cloud.launch(SPEC, "Worker-1"))
    clock.advance(minutes=20)
    assert state(cloud, failed.cloud_id) is CloudState.FAILED
    retried = run(cloud.launch(SPEC, "Worker-1"))
    assert retried.cloud_id != failed.cloud_id
    run(cloud.terminate(retried.cloud_id))
    assert run(cloud.launch(SPEC, "Worker-1")).cloud_id not in {failed.cloud_id, retried.cloud_id}


def test_a_failed_boot_is_reported_with_a_reason(clock: FakeClock) -> None:
    cloud = cloud_on(clock, failure_probability=1.0)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    assert vm.state is CloudState.PENDING  # the failure shows only when the boot would end
    clock.advance(minutes=30)
    failed = run(cloud.describe(vm.cloud_id))
    assert failed.state is CloudState.FAILED
    assert (failed.state_reason, failed.private_ip) == (BOOT_FAILURE_REASON, None)
    with pytest.raises(CloudError):
        run(cloud.start(vm.cloud_id))
    run(cloud.terminate(vm.cloud_id))
    clock.advance(minutes=1)
    assert state(cloud, vm.cloud_id) is CloudState.TERMINATED


def boot_outcomes(seed: int, probability: float, workers: int = 300) -> list[CloudState]:
    clock = FakeClock()
    cloud = SimulatedCloud(clock, failure_probability=probability, seed=seed)
    ids = [run(cloud.launch(SPEC, f"Worker-{n}")).cloud_id for n in range(workers)]
    clock.advance(hours=1)
    return [state(cloud, cloud_id) for cloud_id in ids]


def test_failures_follow_the_probability_and_the_seed() -> None:
    outcomes = boot_outcomes(seed=7, probability=0.2)
    failures = outcomes.count(CloudState.FAILED)
    # Binomial(300, 0.2): mean 60, sd ~6.9; these bounds are ~4.3 sd wide.
    assert 30 <= failures <= 90
    assert set(outcomes) == {CloudState.RUNNING, CloudState.FAILED}
    assert boot_outcomes(seed=7, probability=0.2) == outcomes
    assert boot_outcomes(seed=8, probability=0.2) != outcomes
    assert CloudState.FAILED not in boot_outcomes(seed=7, probability=0.0)
    assert set(boot_outcomes(seed=7, probability=1.0)) == {CloudState.FAILED}


def test_outcomes_do_not_depend_on_call_order() -> None:
    def fates(order: list[int]) -> dict[str, CloudState]:
        clock = FakeClock()
        cloud = SimulatedCloud(clock, failure_probability=0.5, seed=3)
        ids = {f"Worker-{n}": run(cloud.launch(SPEC, f"Worker-{n}")).cloud_id for n in order}
        clock.advance(hours=1)
        return {worker: state(cloud, cloud_id) for worker, cloud_id in ids.items()}

    assert fates(list(range(20))) == fates(list(reversed(range(20))))


def test_vm_carries_the_managed_tags(clock: FakeClock) -> None:
    cloud = cloud_on(clock)
    vm = run(cloud.launch(SPEC, "Worker-1", {"Booking": "b-7", "ManagedBy": "someone-else"}))
    assert vm.tags == {
        "Team": "labs",
        "Booking": "b-7",
        "Name": "lrm-Worker-1",
        "ManagedBy": "lablet-resource-manager",
        "WorkerId": "Worker-1",
    }
    assert vm.worker_id == "Worker-1"


def test_list_managed_skips_terminated_unless_asked(clock: FakeClock) -> None:
    cloud = cloud_on(clock, jitter=0.0)
    keep = run(cloud.launch(SPEC, "Worker-1"))
    gone = run(cloud.launch(SPEC, "Worker-2"))
    run(cloud.terminate(gone.cloud_id))
    assert {vm.cloud_id for vm in run(cloud.list_managed())} == {keep.cloud_id, gone.cloud_id}
    clock.advance(minutes=1)
    assert [vm.cloud_id for vm in run(cloud.list_managed())] == [keep.cloud_id]
    assert len(run(cloud.list_managed(include_terminated=True))) == 2


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ("pending", "stop"),
        ("stopping", "start"),
        ("shutting-down", "start"),
        ("shutting-down", "stop"),
        ("terminated", "start"),
    ],
)
def test_illegal_transitions_are_refused(clock: FakeClock, setup: str, action: str) -> None:
    cloud = cloud_on(clock, jitter=0.0)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    if setup != "pending":
        clock.advance(minutes=20)
    if setup == "stopping":
        run(cloud.stop(vm.cloud_id))
    if setup in ("shutting-down", "terminated"):
        run(cloud.terminate(vm.cloud_id))
    if setup == "terminated":
        clock.advance(minutes=5)
    assert state(cloud, vm.cloud_id).value == setup
    with pytest.raises(CloudError) as caught:
        run(getattr(cloud, action)(vm.cloud_id))
    assert caught.value.code == "IncorrectInstanceState"


@pytest.mark.parametrize("action", ["describe", "start", "stop"])
def test_unknown_id_is_cloud_not_found(clock: FakeClock, action: str) -> None:
    with pytest.raises(CloudNotFound):
        run(getattr(cloud_on(clock), action)("i-nope"))


def test_capacity_limit_counts_live_vms(clock: FakeClock) -> None:
    cloud = cloud_on(clock, capacity=2, jitter=0.0)
    first = run(cloud.launch(SPEC, "Worker-1"))
    run(cloud.launch(SPEC, "Worker-2"))
    with pytest.raises(CloudCapacityError) as caught:
        run(cloud.launch(SPEC, "Worker-3"))
    assert caught.value.retryable
    run(cloud.launch(SPEC, "Worker-1"))  # idempotent relaunch needs no room
    run(cloud.terminate(first.cloud_id))
    run(cloud.launch(SPEC, "Worker-3"))


def test_image_catalogue_is_searched_like_ec2(clock: FakeClock) -> None:
    images = [
        Image("ami-old", "CML-2.8.0-1", "2025-01-01T00:00:00.000Z"),
        Image("ami-new", "CML-2.9.1-1", "2026-11-01T00:00:00.000Z"),
    ]
    cloud = cloud_on(clock, images=images)
    assert run(cloud.launch(SPEC, "Worker-1")).ami_id == "ami-new"
    with pytest.raises(AmiNotFound):
        run(cloud.launch(LaunchSpec("m5.large", "CML-3.*"), "Worker-2"))


def test_a_naive_clock_is_refused() -> None:
    cloud = SimulatedCloud(lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        run(cloud.launch(SPEC, "Worker-1"))


@pytest.mark.parametrize(
    "options",
    [{"time_scale": 0}, {"failure_probability": 1.5}, {"jitter": 1.0}, {"failure_probability": -0.1}],
)
def test_bad_options_are_refused(clock: FakeClock, options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        cloud_on(clock, **options)


def test_a_clock_object_with_now_works_too(clock: FakeClock) -> None:
    class PortClock:
        def now(self) -> datetime:
            return clock.now

    cloud = SimulatedCloud(PortClock(), jitter=0.0)
    vm = run(cloud.launch(SPEC, "Worker-1"))
    clock.advance(minutes=20)
    assert state(cloud, vm.cloud_id) is CloudState.RUNNING


def test_next_change_after_the_clock_went_back_is_still_the_earliest_to_come(clock: FakeClock) -> None:
    cloud = cloud_on(clock, jitter=0.0)
    first = run(cloud.launch(SPEC, "Worker-1"))
    clock.advance(minutes=10)
    run(cloud.launch(SPEC, "Worker-2"))
    clock.advance(minutes=15)  # the first boot ended: dropped from the heap
    assert cloud.next_change_at() == first.launched_at + timedelta(minutes=30)
    clock.advance(minutes=-10)  # a wall clock stepped back: the first boot is to come again
    assert cloud.next_change_at() == first.launched_at + timedelta(minutes=20)
