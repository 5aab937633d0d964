"""The cloud provider port: launch, start, stop, terminate and describe worker VMs.

Processors (autoscaler, worker controller) drive VMs only through ``CloudProvider``;
adapters implement it (``adapters.cloud.simulated``, ``adapters.cloud.ec2``).

Contract every adapter honours (checked by ``tests/cloud`` and ``tests/aws``):
- ``launch`` is idempotent on ``worker_id``: while a VM launched for that worker is not
  terminated, launching again returns it instead of creating a second one;
- ``terminate`` is idempotent: terminating a terminated or unknown VM is a no-op;
- ``start`` of a running VM and ``stop`` of a stopped VM are no-ops;
- ``describe`` of an unknown id raises ``CloudNotFound``;
- every VM carries the tags ``ManagedBy=lablet-resource-manager`` and ``WorkerId=<id>``,
  and ``list_managed`` finds them all again after a restart (reconciliation).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

MANAGED_BY_TAG = "ManagedBy"
MANAGED_BY_VALUE = "lablet-resource-manager"
WORKER_ID_TAG = "WorkerId"


class CloudState(str, enum.Enum):
    """EC2's instance states plus ``failed`` (the VM never became usable)."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def is_gone(self) -> bool:
        """The VM is (or is becoming) unusable for good."""
        return self in (CloudState.SHUTTING_DOWN, CloudState.TERMINATED, CloudState.FAILED)


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch, taken from a worker template.

    ``ami_pattern`` is a glob on the image name (``CML-2.9.*``); ``ami_version`` is an
    optional minimum version, compared with the first dotted number in the image name.
    ``region`` ``None`` means the provider's own region. ``startup_minutes`` and
    ``restart_minutes`` only drive the simulated provider (a real cloud takes what it takes).
    """

    instance_type: str
    ami_pattern: str
    ami_version: str | None = None
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    startup_minutes: float = 20.0
    restart_minutes: float = 5.0

    def __post_init__(self) -> None:
        if not self.instance_type:
            raise ValueError("LaunchSpec.instance_type must not be empty")
        if not self.ami_pattern:
            raise ValueError("LaunchSpec.ami_pattern must not be empty")
        if self.startup_minutes < 0 or self.restart_minutes < 0:
            raise ValueError("LaunchSpec startup/restart minutes must be >= 0")
        # A frozen value object must not share a caller's mutable dict.
        object.__setattr__(self, "tags", dict(self.tags))

    @classmethod
    def from_template(cls, template: Any) -> LaunchSpec:
        """Build from anything shaped like a WorkerTemplate (attribute access)."""
        return cls(
            instance_type=template.instance_type,
            ami_pattern=template.ami_pattern,
            ami_version=getattr(template, "ami_version", None) or None,
            region=getattr(template, "region", None) or None,
            tags=dict(getattr(template, "tags", None) or {}),
            startup_minutes=float(getattr(template, "startup_minutes", 20) or 0),
            restart_minutes=float(getattr(template, "restart_minutes", 5) or 0),
        )


@dataclass(frozen=True)
class CloudInstance:
    """A VM as the provider reports it right now."""

    cloud_id: str
    worker_id: str | None
    state: CloudState
    instance_type: str
    ami_id: str
    region: str
    launched_at: datetime | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    state_reason: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", dict(self.tags))


class CloudError(Exception):
    """A cloud call failed. ``retryable`` tells a controller whether to back off and retry."""

    retryable: bool = False

    def __init__(self, detail: str, *, code: str = "", retryable: bool | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        if retryable is not None:
            self.retryable = retryable


class CloudCapacityError(CloudError):
    """The cloud has no capacity (or quota) for this launch now; try later or elsewhere."""

    retryable = True


class CloudNotFound(CloudError):
    """No VM with that id."""


class AmiNotFound(CloudError):
    """No image matches the template's pattern and minimum version."""


@runtime_checkable
class CloudProvider(Protocol):
    """Port to a cloud that runs worker VMs. All methods are coroutines."""

    async def launch(
        self, spec: LaunchSpec, worker_id: str, tags: Mapping[str, str] | None = None
    ) -> CloudInstance:
        """Launch one VM for ``worker_id`` (idempotent on ``worker_id``)."""
        ...

    async def start(self, cloud_id: str) -> CloudInstance:
        """Start a stopped VM; a no-op when it is pending or running."""
        ...

    async def stop(self, cloud_id: str) -> CloudInstance:
        """Stop a running VM; a no-op when it is stopping or stopped."""
        ...

    async def terminate(self, cloud_id: str) -> None:
        """Terminate a VM; a no-op when it is terminated or unknown."""
        ...

    async def describe(self, cloud_id: str) -> CloudInstance:
        """The VM's current state; ``CloudNotFound`` when unknown."""
        ...

    async def list_managed(self, *, include_terminated: bool = False) -> list[CloudInstance]:
        """Every VM tagged ``ManagedBy=lablet-resource-manager`` (for reconciliation)."""
        ...


def managed_tags(
    spec_tags: Mapping[str, str], extra: Mapping[str, str] | None, worker_id: str
) -> dict[str, str]:
    """Template tags, then caller tags, then the two tags LRM relies on (which always win)."""
    tags = {**spec_tags, **(extra or {})}
    tags.setdefault("Name", f"lrm-{worker_id}")
    tags[MANAGED_BY_TAG] = MANAGED_BY_VALUE
    tags[WORKER_ID_TAG] = worker_id
    return tags
