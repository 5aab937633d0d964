"""The AWS EC2 provider, through aiobotocore.

One provider serves one region (``Ec2Settings.region``); a template for another region is
refused with ``CloudError(code="RegionNotServed")`` rather than launched somewhere
unexpected. The client is opened lazily in the running event loop (or explicitly with
``async with Ec2Cloud(...)``) and must be used from that loop only.

Idempotent launch, in two layers:
1. before launching, look for a VM tagged ``WorkerId=<id>`` (and ``ManagedBy``) that is not
   shutting down or terminated, and return it;
2. ``ClientToken = <worker id>:<number of earlier dead VMs of that worker>``, so EC2 itself
   turns two racing launches into one reservation, while a relaunch after a failed boot
   gets a fresh token. (moto ignores ClientToken; layer 1 covers the tests.)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiobotocore.session import AioSession

from adapters.aws_session import LazyAwsClient
from adapters.cloud.ami import Image, ec2_name_filter, pick_image
from adapters.cloud.ec2_errors import cloud_errors
from adapters.cloud.ec2_settings import Ec2Settings
from processors.ports.cloud import (
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    WORKER_ID_TAG,
    CloudError,
    CloudInstance,
    CloudNotFound,
    CloudState,
    LaunchSpec,
    managed_tags,
)

LIVE_STATES = ("pending", "running", "stopping", "stopped")
ALL_STATES = (*LIVE_STATES, "shutting-down", "terminated")
# A VM that EC2 terminated on its own during launch never booted: report it as failed.
BOOT_FAILURE_CODES = frozenset({"Server.InternalError", "Server.InsufficientInstanceCapacity"})


class Ec2Cloud:
    """``CloudProvider`` on EC2."""

    def __init__(self, settings: Ec2Settings | None = None, *, session: AioSession | None = None) -> None:
        self.settings = settings or Ec2Settings()
        self.region = self.settings.region
        self._aws = LazyAwsClient("ec2", self.settings, session)
        self._launch_locks: dict[str, asyncio.Lock] = {}
        self.page_size = 500  # describe_instances MaxResults (5..1000)

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Ec2Cloud:
        await self._ec2()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._aws.aclose()

    async def _ec2(self) -> Any:
        return await self._aws.get()

    # -- the port ---------------------------------------------------------------------

    async def launch(
        self, spec: LaunchSpec, worker_id: str, tags: Mapping[str, str] | None = None
    ) -> CloudInstance:
        if spec.region and spec.region != self.region:
            raise CloudError(
                f"template region {spec.region} is not served by this provider ({self.region})",
                code="RegionNotServed",
            )
        lock = self._launch_locks.setdefault(worker_id, asyncio.Lock())
        async with lock:
            earlier = await self._instances_of(worker_id)
            live = [vm for vm in earlier if vm["State"]["Name"] in LIVE_STATES]
            if live:
                return self._to_instance(min(live, key=lambda vm: vm["LaunchTime"]))
            image = await self._find_image(spec)
            reservation = await self._run_instance(spec, worker_id, tags, image, attempt=len(earlier))
        return self._to_instance(reservation["Instances"][0])

    async def start(self, cloud_id: str) -> CloudInstance:
        ec2 = await self._ec2()
        with cloud_errors(f"start {cloud_id}"):
            await ec2.start_instances(InstanceIds=[cloud_id])
        return await self.describe(cloud_id)

    async def stop(self, cloud_id: str) -> CloudInstance:
        ec2 = await self._ec2()
        with cloud_errors(f"stop {cloud_id}"):
            await ec2.stop_instances(InstanceIds=[cloud_id])
        return await self.describe(cloud_id)

    async def terminate(self, cloud_id: str) -> None:
        ec2 = await self._ec2()
        try:
            with cloud_errors(f"terminate {cloud_id}"):
                await ec2.terminate_instances(InstanceIds=[cloud_id])
        except CloudNotFound:
            return  # already gone (EC2 forgets terminated VMs after about an hour)

    async def describe(self, cloud_id: str) -> CloudInstance:
        ec2 = await self._ec2()
        with cloud_errors(f"describe {cloud_id}"):
            response = await ec2.describe_instances(InstanceIds=[cloud_id])
        for reservation in response.get("Reservations", []):
            for vm in reservation.get("Instances", []):
                return self._to_instance(vm)
        raise CloudNotFound(f"no VM {cloud_id!r}", code="InvalidInstanceID.NotFound")

    async def list_managed(self, *, include_terminated: bool = False) -> list[CloudInstance]:
        states = ALL_STATES if include_terminated else tuple(s for s in ALL_STATES if s != "terminated")
        found = await self._describe_all(
            [
                {"Name": f"tag:{MANAGED_BY_TAG}", "Values": [MANAGED_BY_VALUE]},
                {"Name": "instance-state-name", "Values": list(states)},
            ]
        )
        return [self._to_instance(vm) for vm in found]

    # -- internals --------------------------------------------------------------------

    async def _instances_of(self, worker_id: str) -> list[dict[str, Any]]:
        return await self._describe_all(
            [
                {"Name": f"tag:{MANAGED_BY_TAG}", "Values": [MANAGED_BY_VALUE]},
                {"Name": f"tag:{WORKER_ID_TAG}", "Values": [worker_id]},
                {"Name": "instance-state-name", "Values": list(ALL_STATES)},
            ]
        )

    async def _describe_all(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ec2 = await self._ec2()
        found: list[dict[str, Any]] = []
        with cloud_errors("describe instances"):
            paginator = ec2.get_paginator("describe_instances")
            pages = paginator.paginate(Filters=filters, PaginationConfig={"PageSize": self.page_size})
            async for page in pages:
                for reservation in page.get("Reservations", []):
                    found.extend(reservation.get("Instances", []))
        return found

    async def _find_image(self, spec: LaunchSpec) -> Image:
        ec2 = await self._ec2()
        filters = [
            {"Name": "name", "Values": [ec2_name_filter(spec.ami_pattern)]},
            {"Name": "state", "Values": ["available"]},
            *({"Name": f"tag:{k}", "Values": [v]} for k, v in self.settings.ami_tags.items()),
        ]
        images: list[Image] = []
        with cloud_errors(f"find image {spec.ami_pattern}"):
            paginator = ec2.get_paginator("describe_images")
            async for page in paginator.paginate(Owners=self.settings.ami_owners, Filters=filters):
                images.extend(
                    Image(image_id=i["ImageId"], name=i.get("Name", ""), created_at=i.get("CreationDate", ""))
                    for i in page.get("Images", [])
                )
        return pick_image(images, spec.ami_pattern, spec.ami_version)

    async def _run_instance(
        self,
        spec: LaunchSpec,
        worker_id: str,
        extra_tags: Mapping[str, str] | None,
        image: Image,
        *,
        attempt: int,
    ) -> dict[str, Any]:
        s = self.settings
        tag_list = [{"Key": k, "Value": v} for k, v in managed_tags(spec.tags, extra_tags, worker_id).items()]
        request: dict[str, Any] = {
            "ImageId": image.image_id,
            "InstanceType": spec.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": client_token(worker_id, attempt),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tag_list},
                {"ResourceType": "volume", "Tags": tag_list},
            ],
        }
        if s.subnet_id:
            request["SubnetId"] = s.subnet_id
        if s.security_group_ids:
            request["SecurityGroupIds"] = list(s.security_group_ids)
        if s.key_name:
            request["KeyName"] = s.key_name
        if s.iam_instance_profile:
            request["IamInstanceProfile"] = {"Name": s.iam_instance_profile}
        ec2 = await self._ec2()
        with cloud_errors(f"launch {spec.instance_type} for {worker_id}"):
            return await ec2.run_instances(**request)

    def _to_instance(self, vm: Mapping[str, Any]) -> CloudInstance:
        tags = {t["Key"]: t["Value"] for t in vm.get("Tags", []) or []}
        state = CloudState(vm["State"]["Name"])
        reason = vm.get("StateReason") or {}
        ended = state in (CloudState.SHUTTING_DOWN, CloudState.TERMINATED)
        if ended and reason.get("Code") in BOOT_FAILURE_CODES:
            state = CloudState.FAILED
        launched_at = vm.get("LaunchTime")
        return CloudInstance(
            cloud_id=vm["InstanceId"],
            worker_id=tags.get(WORKER_ID_TAG),
            state=state,
            instance_type=vm.get("InstanceType", ""),
            ami_id=vm.get("ImageId", ""),
            region=self.region,
            launched_at=launched_at if isinstance(launched_at, datetime) else None,
            private_ip=vm.get("PrivateIpAddress") or None,
            public_ip=vm.get("PublicIpAddress") or None,
            state_reason=reason.get("Message") or vm.get("StateTransitionReason") or None,
            tags=tags,
        )


def client_token(worker_id: str, attempt: int) -> str:
    """EC2's idempotency token: at most 64 ASCII characters."""
    token = f"{worker_id}:{attempt}"
    if len(token) <= 64 and token.isascii():
        return token
    return hashlib.sha256(token.encode()).hexdigest()
