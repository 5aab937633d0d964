"""The worker controller: drives each worker's VM through the cloud port (SPEC §3.4, §5).

The worker aggregate holds the decisions (the autoscaler or an admin moved it to PENDING,
STOPPING, TERMINATED…); this process manager makes the cloud match them and records what
the cloud did:

| worker state | cloud VM | the controller |
|---|---|---|
| PENDING | none yet | ``launch`` (idempotent on the worker id) → ``WorkerProvisioningStarted`` with the cloud ids |
| PROVISIONING | pending | waits; after ``boot_timeout_factor`` × the expected boot → VM terminated, ``WorkerProvisioningFailed`` (FAILED) |
| PROVISIONING | running (and CML answers, when a ready check is given) | ``WorkerReady`` with the ip |
| PROVISIONING | stopped (a restart) | ``start`` |
| PROVISIONING | gone / failed | ``WorkerProvisioningFailed`` with the cloud's reason |
| RUNNING, DRAINING, STOPPED | gone | ``WorkerTerminated`` (``worker_lost``, forced: its instances are re-placed) |
| STOPPING | running → ``stop``; stopped → ``WorkerStopped`` | |
| TERMINATED, FAILED | still alive | ``terminate`` (idempotent), then the worker is forgotten |

Every tick reads the cloud once (``list_managed``) and the new events once (a replica of
the workers), so its cost does not grow with the number of calls per worker. Cloud errors
are retried per worker with exponential backoff in clock time; a launch the cloud refuses
for good (no image, bad parameters) fails the worker at once.

At start-up it **reconciles** the cloud with the store: VMs tagged as ours that no live
worker owns are terminated, live workers whose VM is gone are failed or terminated, and
what it did is recorded (``CloudReconciliation``, see ``domain/cloud_reconciliation.py``).

Time comes from the clock port, so the same code runs on the wall clock, on a scaled
demo, and on a virtual clock in tests and ``lablet simulate``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.cloud_reconciliation import CloudReconciliation
from domain.context import CommandContext
from domain.errors import ConcurrencyConflict, Conflict, IllegalTransition, NotFound
from domain.worker import Worker, WorkerState
from processors.ports.clock import Clock
from processors.ports.cloud import CloudError, CloudInstance, CloudNotFound, CloudProvider, CloudState, LaunchSpec
from processors.retry import retry_on_conflict
from processors.workers.quiet import LEDGER_EVENTS, Quiet, ReportsChanges, earliest
from processors.workers.replica import AggregateReplica
from processors.workers.retries import RetrySchedule

log = logging.getLogger(__name__)

W = WorkerState
ACTOR = "system:worker-controller"

# Called with (worker id, ip) once the VM runs: True when CML answers there.
ReadyCheck = Callable[[str, str], Awaitable[bool]]

_WITH_VM = frozenset({W.PROVISIONING, W.RUNNING, W.DRAINING, W.STOPPING, W.STOPPED})
_FINAL = frozenset({W.TERMINATED, W.FAILED})


@dataclass(frozen=True)
class WorkerControllerSettings:
    boot_timeout_factor: float = 2.0
    # A floor on the boot timeout, for templates declaring (almost) instant boots.
    min_boot_timeout: timedelta = timedelta(minutes=2)
    retry_base: timedelta = timedelta(seconds=10)
    retry_max: timedelta = timedelta(minutes=5)
    #: skip ticks that would find nothing changed (``quiet.py``; off: tests compare both)
    skip_quiet_ticks: bool = True


@dataclass
class TickReport:
    at: datetime
    steps: list[tuple[str, str]] = field(default_factory=list)  # (worker id, what was done)
    errors: list[tuple[str, str]] = field(default_factory=list)
    reconciliation: dict[str, Any] | None = None


class _VmIndex:
    """One ``list_managed`` answer, looked up by cloud id and by worker id."""

    def __init__(self, vms: list[CloudInstance]) -> None:
        self.by_id = {vm.cloud_id: vm for vm in vms}
        self.by_worker: dict[str, list[CloudInstance]] = {}
        for vm in vms:
            if vm.worker_id:
                self.by_worker.setdefault(vm.worker_id, []).append(vm)

    def live_of(self, worker_id: str) -> list[CloudInstance]:
        return sorted((vm for vm in self.by_worker.get(worker_id, []) if not vm.state.is_gone),
                      key=lambda vm: vm.cloud_id)


class WorkerController:
    def __init__(
        self,
        store: Any,
        cloud: CloudProvider,
        clock: Clock,
        *,
        settings: WorkerControllerSettings | None = None,
        ready_check: ReadyCheck | None = None,
        provider_name: str = "",
    ) -> None:
        self.store = store
        self.cloud = cloud
        self.clock = clock
        self.settings = settings or WorkerControllerSettings()
        self.ready_check = ready_check
        self.provider_name = provider_name or type(cloud).__name__
        self.replica = AggregateReplica(store, (Worker,))
        self.retries = RetrySchedule(self.settings.retry_base, self.settings.retry_max)
        self.reconciled = False
        # Ticks that would find nothing changed are skipped (``quiet.py``): only with a cloud
        # that reports its changes and no CML ready check (CML answers without telling).
        quiet_ok = self.settings.skip_quiet_ticks and ready_check is None
        self._changes = cloud if quiet_ok and isinstance(cloud, ReportsChanges) else None
        self._quiet: Quiet | None = None
        self._deadline: datetime | None = None  # the earliest boot deadline seen this tick
        self.skipped_ticks = 0

    # -- the loop body -------------------------------------------------------------------
    async def tick(self) -> TickReport:
        """Bring every worker one step closer to its desired state (never blocks on a boot)."""
        changed = _changes_a_decision(self.replica.catch_up())
        now = self.clock.now()
        report = TickReport(now)
        if self._quiet is not None and not changed and self._changes is not None \
                and self._quiet.holds(now, self._changes):
            self.skipped_ticks += 1
            return report
        self._quiet = None
        self._deadline = None
        try:
            if not self.reconciled:
                report.reconciliation = await self.reconcile(now)
                self.reconciled = True
                self.replica.catch_up()
            vms = _VmIndex(await self.cloud.list_managed(include_terminated=True))
        except CloudError as error:
            log.warning("worker controller: cloud unavailable (%s); next tick retries", error)
            report.errors.append(("*", str(error)))
            return report
        for worker in list(self.replica.all(Worker)):
            if self.retries.waiting(worker.id, now):
                continue
            try:
                step = await self._drive(worker, vms, now)
            except CloudError as error:
                retry_at = self.retries.failed(worker.id, now, str(error))
                log.warning("worker %s: cloud error in %s (%s); retry at %s", worker.id, worker.state, error,
                            retry_at.isoformat())
                report.errors.append((worker.id, f"{type(error).__name__}: {error}"))
                continue
            except (Conflict, IllegalTransition, ConcurrencyConflict, NotFound) as error:
                # The worker changed under us (an admin, the autoscaler): next tick sees it.
                report.errors.append((worker.id, f"{type(error).__name__}: {error}"))
                continue
            self.retries.succeeded(worker.id)
            if step:
                report.steps.append((worker.id, step))
        changed = _changes_a_decision(self.replica.catch_up())
        if self._changes is not None and not changed and not report.steps and not report.errors:
            self._quiet = Quiet(now, self._changes.revision, self._changes.next_change_at(),
                                earliest(self._deadline, self.retries.next_at()))
        return report

    def next_wakeup(self) -> datetime | None:
        """The earliest retry due (the cloud's own changes are seen by polling)."""
        return self.retries.next_at()

    # -- one worker ----------------------------------------------------------------------
    async def _drive(self, worker: Worker, vms: _VmIndex, now: datetime) -> str | None:
        state = worker.state
        if state is W.PENDING:
            return await self._launch(worker, vms, now)
        if state in _FINAL:
            return await self._clean_up(worker, vms)
        vm = await self._vm_of(worker, vms)
        if state is W.PROVISIONING:
            return await self._provisioning(worker, vm, now)
        if vm is None or vm.state.is_gone:
            self._change(worker.id, now, "lost", lambda w: w.terminate("worker_lost", self._ctx(w, now, "lost"),
                                                                       force=True))
            return f"worker_lost: VM {worker.cloud_instance_id} {_describe(vm)}"
        if state is W.STOPPING:
            if vm.state is CloudState.RUNNING:
                await self.cloud.stop(vm.cloud_id)
                return "stop requested"
            if vm.state is CloudState.STOPPED:
                self._change(worker.id, now, "stopped", lambda w: w.mark_stopped(self._ctx(w, now, "stopped")))
                return "stopped"
        return None

    async def _launch(self, worker: Worker, vms: _VmIndex, now: datetime) -> str | None:
        startup = timedelta(minutes=worker.template.startup_minutes)
        requested = worker.entered_at(W.PENDING) or now
        deadline = requested + self._timeout(startup)
        if now >= deadline:
            for vm in vms.live_of(worker.id):
                await self.cloud.terminate(vm.cloud_id)
            reason = (f"not launched within {_minutes(deadline - requested)} min of the decision"
                      f" ({self.retries.attempts(worker.id)} failed attempt(s))")
            self._fail(worker.id, now, reason)
            return f"FAILED: {reason}"
        try:
            vm = await self.cloud.launch(LaunchSpec.from_template(worker.template), worker.id)
        except CloudError as error:
            if error.retryable:
                raise
            reason = f"launch refused: {type(error).__name__}: {error}"
            self._fail(worker.id, now, reason)
            return f"FAILED: {reason}"
        self._change(worker.id, now, "launched", lambda w: w.start_provisioning(
            vm.cloud_id, self._ctx(w, now, "launched"), region=vm.region, expected_ready_at=now + startup))
        return f"launched {vm.cloud_id}"

    async def _provisioning(self, worker: Worker, vm: CloudInstance | None, now: datetime) -> str | None:
        if vm is None or vm.state.is_gone:
            reason = f"VM {worker.cloud_instance_id} {_describe(vm)}"
            self._fail(worker.id, now, reason)
            return f"FAILED: {reason}"
        if vm.state is CloudState.RUNNING and await self._is_ready(worker, vm):
            ip = vm.private_ip or vm.public_ip or vm.cloud_id
            self._change(worker.id, now, "ready", lambda w: w.mark_ready(ip, self._ctx(w, now, "ready")))
            return f"ready at {ip}"
        started = worker.entered_at(W.PROVISIONING) or now
        expected = max((worker.expected_ready_at or started) - started, timedelta(0))
        deadline = started + self._timeout(expected)
        self._deadline = earliest(self._deadline, deadline)
        if now >= deadline:
            await self.cloud.terminate(vm.cloud_id)
            reason = (f"boot timeout: not ready {_minutes(now - started)} min after it began "
                      f"(expected {_minutes(expected)} min, limit {_minutes(deadline - started)} min); VM terminated")
            self._fail(worker.id, now, reason)
            return f"FAILED: {reason}"
        if vm.state is CloudState.STOPPED:  # a restart: the VM waits for its start
            await self.cloud.start(vm.cloud_id)
            return f"start requested for {vm.cloud_id}"
        return None

    async def _clean_up(self, worker: Worker, vms: _VmIndex) -> str | None:
        """A terminated or failed worker keeps no VM; once none is left it is forgotten."""
        # Listed with the terminated ones: a VM missing from the list is long gone.
        alive = vms.live_of(worker.id)
        for vm in alive:
            await self.cloud.terminate(vm.cloud_id)
        self.replica.retire(worker.id)
        return f"terminated VM(s) {', '.join(vm.cloud_id for vm in alive)}" if alive else None

    async def _vm_of(self, worker: Worker, vms: _VmIndex) -> CloudInstance | None:
        cloud_id = worker.cloud_instance_id
        if cloud_id is None:
            live = vms.live_of(worker.id)
            return live[0] if live else None
        vm = vms.by_id.get(cloud_id)
        if vm is None:  # a listing can lag behind a launch (EC2 is eventually consistent)
            try:
                vm = await self.cloud.describe(cloud_id)
            except CloudNotFound:
                return None
        return vm

    async def _is_ready(self, worker: Worker, vm: CloudInstance) -> bool:
        if self.ready_check is None:
            return True
        try:
            return bool(await self.ready_check(worker.id, vm.private_ip or vm.public_ip or ""))
        except Exception as error:  # noqa: BLE001 - CML not answering yet is the normal case
            log.info("worker %s: CML not ready yet (%s)", worker.id, error)
            return False

    # -- reconciliation ------------------------------------------------------------------
    async def reconcile(self, now: datetime) -> dict[str, Any]:
        """Compare the cloud with the store: terminate VMs nobody owns, fail workers whose VM is gone."""
        vms = await self.cloud.list_managed()
        orphans: list[dict[str, Any]] = []
        for vm in sorted(vms, key=lambda v: v.cloud_id):
            if vm.state.is_gone:
                continue
            worker = self.replica.get(vm.worker_id) if vm.worker_id else None
            if worker is None:
                reason = "no WorkerId tag" if not vm.worker_id else "unknown worker"
            elif worker.state in _FINAL:
                reason = f"worker is {worker.state.value}"
            elif worker.cloud_instance_id and worker.cloud_instance_id != vm.cloud_id:
                reason = f"second VM of the worker (its VM is {worker.cloud_instance_id})"
            else:
                continue  # ours; a PENDING worker's VM is adopted by its (idempotent) launch
            await self.cloud.terminate(vm.cloud_id)
            orphans.append({"cloud_instance_id": vm.cloud_id, "worker_id": vm.worker_id,
                            "state": vm.state.value, "reason": reason})
        listed = {vm.cloud_id for vm in vms if not vm.state.is_gone}
        lost: list[dict[str, Any]] = []
        for worker in list(self.replica.all(Worker)):
            if worker.state not in _WITH_VM or not worker.cloud_instance_id or worker.cloud_instance_id in listed:
                continue
            try:
                vm: CloudInstance | None = await self.cloud.describe(worker.cloud_instance_id)
            except CloudNotFound:
                vm = None
            if vm is not None and not vm.state.is_gone:
                continue
            reason = f"reconciliation: VM {worker.cloud_instance_id} {_describe(vm)}"
            if worker.state is W.PROVISIONING:
                self._fail(worker.id, now, reason)
                outcome = W.FAILED
            else:
                self._change(worker.id, now, "lost", lambda w: w.terminate("worker_lost", self._ctx(w, now, "lost"),
                                                                           force=True))
                outcome = W.TERMINATED
            lost.append({"worker_id": worker.id, "state": worker.state.value, "cloud_instance_id":
                         worker.cloud_instance_id, "outcome": outcome.value, "reason": reason})
        summary = {"vms_seen": len(vms), "orphans_terminated": orphans, "workers_lost": lost}
        if orphans or lost:
            ctx = CommandContext(at=now, actor=ACTOR, causation_id=f"reconciliation:{now.isoformat()}")
            self.store.save(CloudReconciliation.record(ctx, provider=self.provider_name, **summary))
            log.warning("reconciliation: %d orphan VM(s) terminated, %d worker(s) lost", len(orphans), len(lost))
        return summary

    # -- commands ------------------------------------------------------------------------
    def _ctx(self, worker: Worker, now: datetime, step: str) -> CommandContext:
        # Deterministic causation: the same step on the same worker version is one command.
        return CommandContext(at=now, actor=ACTOR, causation_id=f"worker-controller:{worker.id}@{worker.version}:{step}")

    def _change(self, worker_id: str, now: datetime, step: str, command: Callable[[Worker], None]) -> int:
        def attempt() -> int:
            worker = self.store.get(worker_id)
            command(worker)
            return self.store.save(worker)

        return retry_on_conflict(attempt)

    def _fail(self, worker_id: str, now: datetime, reason: str) -> None:
        self._change(worker_id, now, "failed",
                     lambda w: w.provisioning_failed(reason, self._ctx(w, now, "failed")))

    def _timeout(self, expected: timedelta) -> timedelta:
        return max(expected * self.settings.boot_timeout_factor, self.settings.min_boot_timeout)


def _changes_a_decision(events: list[Any]) -> bool:
    """Any worker event a tick decides from (all but reservations)."""
    return any(not isinstance(stored.event, LEDGER_EVENTS) for stored in events)


def _describe(vm: CloudInstance | None) -> str:
    if vm is None:
        return "is gone (not found)"
    return f"is {vm.state.value}" + (f": {vm.state_reason}" if vm.state_reason else "")


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g}"


__all__ = ["ReadyCheck", "TickReport", "WorkerController", "WorkerControllerSettings"]
