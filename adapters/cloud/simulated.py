"""A simulated cloud: VMs that boot, stop and fail like EC2 ones, on an injectable clock.

Nothing here sleeps. Each operation records when it started and when it will be done;
``describe`` computes the state from the clock. With a virtual clock the simulator decides
how fast time passes; with the wall clock and ``time_scale`` a demo boots a 20-minute
template in seconds.

Randomness (boot jitter, boot failures) comes from ``random.Random`` seeded with
``(seed, worker id, operation number)``, so a run is reproducible whatever the order in
which concurrent controllers call the provider.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.cloud.ami import Image, pick_image
from processors.ports.clock import Clock as ClockPort
from processors.ports.cloud import (
    CloudCapacityError,
    CloudError,
    CloudInstance,
    CloudNotFound,
    CloudState,
    LaunchSpec,
    managed_tags,
)

# A callable returning an aware datetime; an object with ``now()`` (the Clock port) works too.
Clock = Callable[[], datetime]

BOOT_FAILURE_REASON = "Server.BootFailure: simulated boot failure"


@dataclass
class _Vm:
    cloud_id: str
    worker_id: str
    spec: LaunchSpec
    ami_id: str
    region: str
    tags: dict[str, str]
    launched_at: datetime
    private_ip: str
    # The state of the current operation: ``transient`` until ``done_at``, then ``settled``.
    transient: CloudState
    settled: CloudState
    done_at: datetime
    operations: int = 1
    failure_reason: str | None = None

    def state_at(self, now: datetime) -> CloudState:
        return self.transient if now < self.done_at else self.settled


class SimulatedCloud:
    """In-memory ``CloudProvider``.

    - ``time_scale``: speed-up; every duration is divided by it (60: a 20-minute boot takes
      20 s). Same meaning as the ``LRM_TIME_SCALE`` setting.
    - ``failure_probability``: chance that a boot (launch or restart) ends in ``failed``.
    - ``jitter``: durations vary uniformly by ``± jitter`` (0.1 = ±10 %).
    - ``capacity``: most live VMs at once; one more launch raises ``CloudCapacityError``.
    - ``images``: an AMI catalogue to resolve ``ami_pattern`` against (``AmiNotFound`` when
      nothing matches); ``None`` accepts any pattern with a synthetic image id.
    """

    def __init__(
        self,
        clock: Clock | ClockPort,
        *,
        time_scale: float = 1.0,
        failure_probability: float = 0.0,
        jitter: float = 0.1,
        seed: int = 0,
        stop_seconds: float = 60.0,
        terminate_seconds: float = 30.0,
        capacity: int | None = None,
        images: Iterable[Image] | None = None,
        region: str = "sim-local-1",
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if not 0.0 <= failure_probability <= 1.0:
            raise ValueError("failure_probability must be within [0, 1]")
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be within [0, 1)")
        now = getattr(clock, "now", None)
        self._clock: Clock = now if callable(now) else clock  # type: ignore[assignment]
        self.time_scale = time_scale
        self.failure_probability = failure_probability
        self.jitter = jitter
        self.seed = seed
        self.stop_seconds = stop_seconds
        self.terminate_seconds = terminate_seconds
        self.capacity = capacity
        self.images = list(images) if images is not None else None
        self.region = region
        self._vms: dict[str, _Vm] = {}
        self._live_by_worker: dict[str, str] = {}
        # Grows with every call that changes a VM (with ``next_change_at``: the cloud says
        # when it changes, so a controller can skip ticks that would find nothing new).
        self.revision = 0
        self._done_times: list[tuple[datetime, str]] = []  # (done_at, cloud id), see next_change_at
        self._dropped_until: datetime | None = None

    # -- the port ---------------------------------------------------------------------

    async def launch(
        self, spec: LaunchSpec, worker_id: str, tags: Mapping[str, str] | None = None
    ) -> CloudInstance:
        now = self._now()
        existing = self._live_vm_of(worker_id, now)
        if existing is not None:
            return self._snapshot(existing, now)
        if self.capacity is not None and self._live_count(now) >= self.capacity:
            raise CloudCapacityError(
                f"simulated cloud is full ({self.capacity} VMs)", code="InsufficientInstanceCapacity"
            )
        number = len(self._vms) + 1
        vm = _Vm(
            cloud_id=f"i-{number:017x}",
            worker_id=worker_id,
            spec=spec,
            ami_id=self._resolve_image(spec),
            region=spec.region or self.region,
            tags=managed_tags(spec.tags, tags, worker_id),
            launched_at=now,
            private_ip=f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}",
            transient=CloudState.PENDING,
            settled=CloudState.RUNNING,
            done_at=now,
        )
        self._boot(vm, now, spec.startup_minutes * 60)
        self._vms[vm.cloud_id] = vm
        self._live_by_worker[worker_id] = vm.cloud_id
        return self._snapshot(vm, now)

    async def start(self, cloud_id: str) -> CloudInstance:
        now = self._now()
        vm = self._get(cloud_id)
        state = vm.state_at(now)
        if state is CloudState.STOPPED:
            vm.operations += 1
            self._boot(vm, now, vm.spec.restart_minutes * 60)
        elif state not in (CloudState.PENDING, CloudState.RUNNING):
            raise _incorrect_state(cloud_id, state, "start")
        return self._snapshot(vm, now)

    async def stop(self, cloud_id: str) -> CloudInstance:
        now = self._now()
        vm = self._get(cloud_id)
        state = vm.state_at(now)
        if state is CloudState.RUNNING:
            vm.operations += 1
            self._begin(vm, now, CloudState.STOPPING, CloudState.STOPPED, self.stop_seconds)
        elif state not in (CloudState.STOPPING, CloudState.STOPPED):
            raise _incorrect_state(cloud_id, state, "stop")
        return self._snapshot(vm, now)

    async def terminate(self, cloud_id: str) -> None:
        now = self._now()
        vm = self._vms.get(cloud_id)
        if vm is None or vm.state_at(now) in (CloudState.SHUTTING_DOWN, CloudState.TERMINATED):
            return
        vm.operations += 1
        self._begin(vm, now, CloudState.SHUTTING_DOWN, CloudState.TERMINATED, self.terminate_seconds)
        if self._live_by_worker.get(vm.worker_id) == cloud_id:
            del self._live_by_worker[vm.worker_id]

    async def describe(self, cloud_id: str) -> CloudInstance:
        now = self._now()
        return self._snapshot(self._get(cloud_id), now)

    async def list_managed(self, *, include_terminated: bool = False) -> list[CloudInstance]:
        now = self._now()
        found = [self._snapshot(vm, now) for vm in self._vms.values()]
        if not include_terminated:
            found = [vm for vm in found if vm.state is not CloudState.TERMINATED]
        return found

    # -- for the simulator ------------------------------------------------------------

    def next_change_at(self) -> datetime | None:
        """When the next VM changes state by itself (lets a virtual clock jump ahead).

        From a heap of the transitions' end times (the simulator asks at every clock step:
        a scan of every VM ever launched would grow with the day); entries whose time has
        come or whose VM began another transition are dropped as they reach the top.
        """
        now = self._now()
        if self._dropped_until is not None and now < self._dropped_until:  # the clock went back
            return min((vm.done_at for vm in self._vms.values() if vm.done_at > now), default=None)
        heap = self._done_times
        while heap and (heap[0][0] <= now or self._vms[heap[0][1]].done_at != heap[0][0]):
            heapq.heappop(heap)
        self._dropped_until = now if self._dropped_until is None else max(self._dropped_until, now)
        return heap[0][0] if heap else None

    # -- internals --------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the simulated cloud's clock must return timezone-aware datetimes")
        return now

    def _get(self, cloud_id: str) -> _Vm:
        try:
            return self._vms[cloud_id]
        except KeyError:
            raise CloudNotFound(f"no VM {cloud_id!r}", code="InvalidInstanceID.NotFound") from None

    def _live_vm_of(self, worker_id: str, now: datetime) -> _Vm | None:
        cloud_id = self._live_by_worker.get(worker_id)
        if cloud_id is None:
            return None
        vm = self._vms[cloud_id]
        # A failed boot frees the worker id: launching again is a fresh attempt.
        return None if vm.state_at(now).is_gone else vm

    def _live_count(self, now: datetime) -> int:
        return sum(1 for vm in self._vms.values() if not vm.state_at(now).is_gone)

    def _rng(self, vm: _Vm) -> random.Random:
        return random.Random(f"{self.seed}:{vm.worker_id}:{vm.operations}")

    def _scaled(self, seconds: float, rng: random.Random) -> timedelta:
        factor = 1.0 + rng.uniform(-self.jitter, self.jitter) if self.jitter else 1.0
        return timedelta(seconds=seconds * factor / self.time_scale)

    def _boot(self, vm: _Vm, now: datetime, seconds: float) -> None:
        self.revision += 1
        rng = self._rng(vm)
        fails = rng.random() < self.failure_probability
        vm.transient, vm.settled = CloudState.PENDING, (CloudState.FAILED if fails else CloudState.RUNNING)
        vm.done_at = now + self._scaled(seconds, rng)
        vm.failure_reason = BOOT_FAILURE_REASON if fails else None
        heapq.heappush(self._done_times, (vm.done_at, vm.cloud_id))

    def _begin(
        self, vm: _Vm, now: datetime, transient: CloudState, settled: CloudState, seconds: float
    ) -> None:
        self.revision += 1
        vm.transient, vm.settled = transient, settled
        vm.done_at = now + self._scaled(seconds, self._rng(vm))
        heapq.heappush(self._done_times, (vm.done_at, vm.cloud_id))
        if settled is not CloudState.TERMINATED:
            vm.failure_reason = None  # a terminated VM keeps the reason it failed, if any

    def _resolve_image(self, spec: LaunchSpec) -> str:
        if self.images is not None:
            return pick_image(self.images, spec.ami_pattern, spec.ami_version).image_id
        digest = hashlib.sha256(f"{spec.ami_pattern}|{spec.ami_version}".encode()).hexdigest()
        return f"ami-{digest[:17]}"

    def _snapshot(self, vm: _Vm, now: datetime) -> CloudInstance:
        state = vm.state_at(now)
        has_ip = state in (CloudState.RUNNING, CloudState.STOPPING, CloudState.STOPPED)
        return CloudInstance(
            cloud_id=vm.cloud_id,
            worker_id=vm.worker_id,
            state=state,
            instance_type=vm.spec.instance_type,
            ami_id=vm.ami_id,
            region=vm.region,
            launched_at=vm.launched_at,
            private_ip=vm.private_ip if has_ip else None,
            public_ip=None,
            state_reason=vm.failure_reason if state.is_gone else None,
            tags=vm.tags,
        )


def _incorrect_state(cloud_id: str, state: CloudState, action: str) -> CloudError:
    return CloudError(
        f"VM {cloud_id} is {state.value} and cannot {action}", code="IncorrectInstanceState"
    )

