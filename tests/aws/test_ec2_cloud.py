"""The EC2 provider against a real (in-process) moto server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone

from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends

from adapters.cloud.ec2 import Ec2Cloud, client_token
from adapters.cloud.ec2_settings import Ec2Settings
from processors.ports.cloud import (
    AmiNotFound,
    CloudError,
    CloudNotFound,
    CloudProvider,
    CloudState,
    LaunchSpec,
)
from tests.aws.conftest import CREDENTIALS, REGION
from tests.cloud.contract import CloudProviderContract

pytestmark = pytest.mark.anyio

SPEC = LaunchSpec(
    instance_type="m5zn.metal", ami_pattern="CML-2.9.*", region=REGION, tags={"Team": "labs"}
)


@pytest.fixture(scope="session")
def ec2_admin(moto_endpoint: str) -> Iterator[Any]:
    """A plain boto3 client, to arrange the world and to check it behind the adapter's back."""
    yield boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint, **CREDENTIALS)


@pytest.fixture
def settings(moto_endpoint: str) -> Ec2Settings:
    return Ec2Settings(
        region=REGION,
        endpoint_url=moto_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
    )


@pytest.fixture
async def cloud(settings: Ec2Settings, aio_session: Any) -> AsyncIterator[Ec2Cloud]:
    async with Ec2Cloud(settings, session=aio_session) as provider:
        yield provider


RegisterImage = Callable[..., str]


@pytest.fixture
def register_image(ec2_admin: Any) -> RegisterImage:
    def register(name: str, created: str, **tags: str) -> str:
        image_id = ec2_admin.register_image(Name=name, Description=name)["ImageId"]
        # moto ignores TagSpecifications on register_image: tag afterwards.
        ec2_admin.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        ami = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].amis[image_id]
        ami.creation_date = datetime.fromisoformat(created).replace(tzinfo=timezone.utc)
        return image_id

    return register


@pytest.fixture
def images(register_image: RegisterImage) -> dict[str, str]:
    return {
        "2.8.0": register_image("CML-2.8.0-20250101", "2025-01-01T00:00:00", Product="cml"),
        "2.9.0": register_image("CML-2.9.0-20260301", "2026-03-01T00:00:00", Product="cml"),
        "2.9.1": register_image("CML-2.9.1-20261101", "2026-11-01T00:00:00", Product="cml"),
        "other": register_image("ubuntu-24.04-20261120", "2026-11-20T00:00:00"),
    }


def worker_instances(ec2_admin: Any, worker_id: str) -> list[dict[str, Any]]:
    response = ec2_admin.describe_instances(Filters=[{"Name": "tag:WorkerId", "Values": [worker_id]}])
    return [vm for r in response["Reservations"] for vm in r["Instances"]]


async def test_it_is_a_cloud_provider(cloud: Ec2Cloud) -> None:
    assert isinstance(cloud, CloudProvider)


async def test_launch_picks_the_newest_matching_image(cloud: Ec2Cloud, images: dict[str, str]) -> None:
    vm = await cloud.launch(SPEC, "Worker-1")
    assert vm.ami_id == images["2.9.1"]
    assert vm.instance_type == "m5zn.metal"
    assert vm.worker_id == "Worker-1"


async def test_newest_means_creation_date_not_version(cloud: Ec2Cloud, register_image: RegisterImage) -> None:
    register_image("CML-2.9.1-a", "2026-01-01T00:00:00")
    rebuilt = register_image("CML-2.9.0-rebuilt", "2026-06-01T00:00:00")
    vm = await cloud.launch(SPEC, "Worker-1")
    assert vm.ami_id == rebuilt


async def test_minimum_version_excludes_newer_but_older_versions(
    cloud: Ec2Cloud, register_image: RegisterImage
) -> None:
    wanted = register_image("CML-2.9.1-a", "2026-01-01T00:00:00")
    register_image("CML-2.9.0-rebuilt", "2026-06-01T00:00:00")
    vm = await cloud.launch(LaunchSpec("m5zn.metal", "CML-2.9.*", ami_version="2.9.1"), "Worker-1")
    assert vm.ami_id == wanted


async def test_ami_tags_setting_restricts_images(
    settings: Ec2Settings, register_image: RegisterImage, aio_session: Any
) -> None:
    tagged = register_image("CML-2.9.0-x", "2026-01-01T00:00:00", Product="cml")
    register_image("CML-2.9.1-untagged", "2026-06-01T00:00:00")
    async with Ec2Cloud(
        settings.model_copy(update={"ami_tags": {"Product": "cml"}}), session=aio_session
    ) as cloud:
        vm = await cloud.launch(SPEC, "Worker-1")
    assert vm.ami_id == tagged


async def test_no_matching_image_is_ami_not_found(
    cloud: Ec2Cloud, images: dict[str, str], ec2_admin: Any
) -> None:
    with pytest.raises(AmiNotFound):
        await cloud.launch(LaunchSpec("m5.large", "CML-3.*"), "Worker-1")
    with pytest.raises(AmiNotFound):
        await cloud.launch(LaunchSpec("m5.large", "CML-2.9.*", ami_version="2.10"), "Worker-1")
    assert worker_instances(ec2_admin, "Worker-1") == []


async def test_launch_tags_the_vm(cloud: Ec2Cloud, images: dict[str, str], ec2_admin: Any) -> None:
    vm = await cloud.launch(SPEC, "Worker-1", {"Booking": "b-7", "WorkerId": "forged"})
    [seen] = worker_instances(ec2_admin, "Worker-1")
    tags = {t["Key"]: t["Value"] for t in seen["Tags"]}
    assert tags == {
        "ManagedBy": "lablet-resource-manager",
        "WorkerId": "Worker-1",
        "Team": "labs",
        "Booking": "b-7",
        "Name": "lrm-Worker-1",
    }
    assert vm.tags == tags
    assert seen["ClientToken"] == client_token("Worker-1", 0)


async def test_launch_is_idempotent_on_worker_id(
    cloud: Ec2Cloud, images: dict[str, str], ec2_admin: Any
) -> None:
    first = await cloud.launch(SPEC, "Worker-1")
    again = await cloud.launch(SPEC, "Worker-1")
    racing = await asyncio.gather(*(cloud.launch(SPEC, "Worker-1") for _ in range(3)))
    assert {first.cloud_id, again.cloud_id, *(vm.cloud_id for vm in racing)} == {first.cloud_id}
    assert len(worker_instances(ec2_admin, "Worker-1")) == 1


async def test_idempotency_survives_a_new_provider(
    settings: Ec2Settings, images: dict[str, str], aio_session: Any
) -> None:
    async with Ec2Cloud(settings, session=aio_session) as cloud:
        first = await cloud.launch(SPEC, "Worker-1")
    async with Ec2Cloud(settings, session=aio_session) as restarted:
        assert (await restarted.launch(SPEC, "Worker-1")).cloud_id == first.cloud_id


async def test_a_stopped_vm_is_still_the_workers_vm(cloud: Ec2Cloud, images: dict[str, str]) -> None:
    first = await cloud.launch(SPEC, "Worker-1")
    await cloud.stop(first.cloud_id)
    assert (await cloud.launch(SPEC, "Worker-1")).cloud_id == first.cloud_id


async def test_relaunch_after_termination_is_a_new_vm_with_a_new_token(
    cloud: Ec2Cloud, images: dict[str, str], ec2_admin: Any
) -> None:
    first = await cloud.launch(SPEC, "Worker-1")
    await cloud.terminate(first.cloud_id)
    second = await cloud.launch(SPEC, "Worker-1")
    assert second.cloud_id != first.cloud_id
    tokens = {vm["InstanceId"]: vm["ClientToken"] for vm in worker_instances(ec2_admin, "Worker-1")}
    assert tokens == {first.cloud_id: "Worker-1:0", second.cloud_id: "Worker-1:1"}


async def test_describe_reports_the_vm(cloud: Ec2Cloud, images: dict[str, str]) -> None:
    launched = await cloud.launch(SPEC, "Worker-1")
    vm = await cloud.describe(launched.cloud_id)
    assert vm.state is CloudState.RUNNING  # moto's transitions are instant
    assert vm.private_ip and vm.private_ip.count(".") == 3
    assert vm.launched_at is not None and vm.launched_at.tzinfo is not None
    assert (vm.instance_type, vm.ami_id, vm.region, vm.worker_id) == (
        "m5zn.metal",
        images["2.9.1"],
        REGION,
        "Worker-1",
    )


async def test_describe_maps_pending(cloud: Ec2Cloud, images: dict[str, str]) -> None:
    launched = await cloud.launch(SPEC, "Worker-1")
    backend_vm = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(launched.cloud_id)
    backend_vm._state.name, backend_vm._state.code = "pending", 0
    assert (await cloud.describe(launched.cloud_id)).state is CloudState.PENDING


async def test_stop_start_terminate(cloud: Ec2Cloud, images: dict[str, str]) -> None:
    vm = await cloud.launch(SPEC, "Worker-1")
    assert (await cloud.stop(vm.cloud_id)).state is CloudState.STOPPED
    assert (await cloud.stop(vm.cloud_id)).state is CloudState.STOPPED  # no-op
    assert (await cloud.start(vm.cloud_id)).state is CloudState.RUNNING
    assert (await cloud.start(vm.cloud_id)).state is CloudState.RUNNING  # no-op
    await cloud.terminate(vm.cloud_id)
    assert (await cloud.describe(vm.cloud_id)).state is CloudState.TERMINATED
    await cloud.terminate(vm.cloud_id)  # idempotent
    await cloud.terminate("i-0123456789abcdef0")  # unknown: already gone


async def test_list_managed_finds_only_ours(
    cloud: Ec2Cloud, images: dict[str, str], ec2_admin: Any
) -> None:
    ec2_admin.run_instances(ImageId=images["other"], MinCount=1, MaxCount=1)
    ec2_admin.run_instances(
        ImageId=images["other"],
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "WorkerId", "Value": "Worker-9"}]}],
    )
    kept = [await cloud.launch(SPEC, f"Worker-{n}") for n in range(3)]
    gone = await cloud.launch(SPEC, "Worker-3")
    await cloud.terminate(gone.cloud_id)

    listed = await cloud.list_managed()
    assert {(vm.cloud_id, vm.worker_id) for vm in listed} == {(vm.cloud_id, vm.worker_id) for vm in kept}
    everything = await cloud.list_managed(include_terminated=True)
    assert {vm.worker_id for vm in everything} == {"Worker-0", "Worker-1", "Worker-2", "Worker-3"}


async def test_list_managed_pages_through_many_vms(
    cloud: Ec2Cloud, images: dict[str, str], ec2_admin: Any
) -> None:
    ec2_admin.run_instances(
        ImageId=images["2.9.1"],
        MinCount=7,
        MaxCount=7,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "ManagedBy", "Value": "lablet-resource-manager"}]}
        ],
    )
    cloud.page_size = 5
    assert len(await cloud.list_managed()) == 7


@pytest.mark.parametrize("action", ["describe", "stop", "start"])
async def test_unknown_id_is_cloud_not_found(cloud: Ec2Cloud, action: str) -> None:
    with pytest.raises(CloudNotFound) as caught:
        await getattr(cloud, action)("i-0123456789abcdef0")
    assert caught.value.code == "InvalidInstanceID.NotFound"


async def test_a_template_for_another_region_is_refused(cloud: Ec2Cloud, images: dict[str, str]) -> None:
    with pytest.raises(CloudError) as caught:
        await cloud.launch(LaunchSpec("m5.large", "CML-2.9.*", region="eu-west-1"), "Worker-1")
    assert caught.value.code == "RegionNotServed"


async def test_an_unreachable_endpoint_is_a_retryable_cloud_error(
    settings: Ec2Settings, aio_session: Any
) -> None:
    unreachable = settings.model_copy(
        update={"endpoint_url": "http://127.0.0.1:9", "connect_timeout_seconds": 1}
    )
    async with Ec2Cloud(unreachable, session=aio_session) as cloud:
        with pytest.raises(CloudError) as caught:
            await cloud.describe("i-0123456789abcdef0")
    assert caught.value.retryable


@pytest.fixture
def spec(images: dict[str, str]) -> LaunchSpec:
    return SPEC


@pytest.fixture
def settle() -> Callable[[], None]:
    return lambda: None  # moto's transitions are instant


class TestEc2CloudContract(CloudProviderContract):
    pass
