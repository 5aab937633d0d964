"""What every ``CloudProvider`` does, whatever cloud is behind it.

A provider's test module subclasses ``CloudProviderContract`` (as ``Test…``) and provides
fixtures: ``cloud`` (the provider), ``spec`` (a ``LaunchSpec`` it can launch) and
``settle`` (a callable that lets enough time pass for transitions to finish: a virtual clock
jumps ahead; moto's transitions are instant, so there it does nothing).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from processors.ports.cloud import CloudNotFound, CloudProvider, CloudState, LaunchSpec

Settle = Callable[[], None]

UNKNOWN_ID = "i-0123456789abcdef0"


@pytest.mark.anyio
class CloudProviderContract:
    async def test_is_a_cloud_provider(self, cloud: CloudProvider) -> None:
        assert isinstance(cloud, CloudProvider)

    async def test_a_launched_vm_runs_with_an_ip_and_the_lrm_tags(
        self, cloud: CloudProvider, spec: LaunchSpec, settle: Settle
    ) -> None:
        launched = await cloud.launch(spec, "Worker-c1", {"Booking": "b-1"})
        assert launched.state in (CloudState.PENDING, CloudState.RUNNING)
        settle()
        vm = await cloud.describe(launched.cloud_id)
        assert vm.state is CloudState.RUNNING
        assert vm.private_ip
        assert vm.worker_id == "Worker-c1"
        assert vm.instance_type == spec.instance_type
        assert vm.ami_id.startswith("ami-")
        assert vm.launched_at is not None
        expected = {"ManagedBy": "lablet-resource-manager", "WorkerId": "Worker-c1", "Booking": "b-1"}
        assert expected.items() <= vm.tags.items()

    async def test_launch_is_idempotent_on_worker_id(
        self, cloud: CloudProvider, spec: LaunchSpec, settle: Settle
    ) -> None:
        first = await cloud.launch(spec, "Worker-c1")
        settle()
        again = await cloud.launch(spec, "Worker-c1")
        assert again.cloud_id == first.cloud_id
        listed = await cloud.list_managed()
        assert [vm.cloud_id for vm in listed if vm.worker_id == "Worker-c1"] == [first.cloud_id]

    async def test_stop_and_start(self, cloud: CloudProvider, spec: LaunchSpec, settle: Settle) -> None:
        vm = await cloud.launch(spec, "Worker-c1")
        settle()
        await cloud.stop(vm.cloud_id)
        settle()
        assert (await cloud.describe(vm.cloud_id)).state is CloudState.STOPPED
        assert (await cloud.stop(vm.cloud_id)).state is CloudState.STOPPED
        await cloud.start(vm.cloud_id)
        settle()
        assert (await cloud.describe(vm.cloud_id)).state is CloudState.RUNNING
        assert (await cloud.start(vm.cloud_id)).state is CloudState.RUNNING

    async def test_terminate_is_idempotent(
        self, cloud: CloudProvider, spec: LaunchSpec, settle: Settle
    ) -> None:
        vm = await cloud.launch(spec, "Worker-c1")
        await cloud.terminate(vm.cloud_id)
        await cloud.terminate(vm.cloud_id)
        settle()
        assert (await cloud.describe(vm.cloud_id)).state is CloudState.TERMINATED
        await cloud.terminate(vm.cloud_id)
        await cloud.terminate(UNKNOWN_ID)

    async def test_list_managed_for_reconciliation(
        self, cloud: CloudProvider, spec: LaunchSpec, settle: Settle
    ) -> None:
        kept = await cloud.launch(spec, "Worker-c1")
        gone = await cloud.launch(spec, "Worker-c2")
        await cloud.terminate(gone.cloud_id)
        settle()
        live = await cloud.list_managed()
        assert {(vm.cloud_id, vm.worker_id) for vm in live} == {(kept.cloud_id, "Worker-c1")}
        every = {vm.cloud_id: vm.state for vm in await cloud.list_managed(include_terminated=True)}
        assert every == {kept.cloud_id: CloudState.RUNNING, gone.cloud_id: CloudState.TERMINATED}

    @pytest.mark.parametrize("action", ["describe", "start", "stop"])
    async def test_unknown_id_is_not_found(self, cloud: CloudProvider, action: str) -> None:
        with pytest.raises(CloudNotFound):
            await getattr(cloud, action)(UNKNOWN_ID)
