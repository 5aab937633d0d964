"""The autoscaler process manager (SPEC §5): plan from the log, record the decision, carry it out.

Each ``tick()``:

1. reads the new events into a replica (workers, instances, templates, the decision stream);
2. plans when something changed (any worker/instance/template event), when the previous
   plan's ``next_decision_at`` (a deferred launch, a drain timeout…) has come, and at
   least every ``interval`` — with ``domain.scaling.plan`` on a snapshot (``snapshot.py``);
3. records the plan as ``ScalingDecided`` on the fleet's decision stream **together with
   the PENDING workers it launches, in one atomic save** (see ``domain/scaling_decision.py``: this is
   what makes launching idempotent, even with two autoscalers racing) — a plan with
   actions is always recorded; a plan with none only when what it waits for (deferred
   launches, unplaceable or late instances) changed since the last recorded one;
4. executes the other actions as commands on the aggregates, each with optimistic
   concurrency; a refusal (a lab became active, the state moved on) is recorded as
   ``ScalingActionsRejected``, never retried blindly — the next plan sees the new state.

The worker controller then makes the cloud follow the workers' states.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain.context import CommandContext
from domain.errors import ConcurrencyConflict, Conflict, DomainError, NotFound
from domain.instance import InstanceState, LabletInstance
from domain.scaling import (
    CancelDrain,
    ForceTerminateLeftovers,
    LaunchWorker,
    MoveReservation,
    RestartWorker,
    ScalingAction,
    ScalingPlan,
    ScalingSettings,
    StartDraining,
    StopWorker,
    TerminateWorker,
    plan,
)
from domain.scaling_decision import DEFAULT_SCOPE, ScalingDecision
from domain.worker import Worker
from domain.worker_template import WorkerTemplate
from processors.autoscaler.snapshot import Snapshot, take_snapshot
from processors.autoscaler.view import SnapshotView, rebuilt_view
from processors.ports.clock import Clock
from processors.retry import retry_on_conflict
from processors.workers.replica import AggregateReplica

log = logging.getLogger(__name__)

ACTOR = "system:autoscaler"
WORKER_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrm:autoscaler:launched-worker")


@dataclass(frozen=True)
class AutoscalerSettings:
    policy: str = "default"
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    # Must match the scheduler's, so a queued instance's hold is the one it will get.
    teardown_margin: timedelta = timedelta(minutes=30)
    # Plan at least this often without events (the clock moves holds, drains, retention).
    interval: timedelta = timedelta(minutes=1)
    scope: str = DEFAULT_SCOPE
    max_conflicts: int = 8
    # Every this many plans the incremental snapshot is compared with one built afresh.
    full_check_every: int = 100
    # Consolidation runs in at most one plan per interval (it is the costly part of a plan,
    # and bookings rarely change enough in between to move anything again).
    consolidation_interval: timedelta = timedelta(minutes=10)


@dataclass
class Decision:
    """What one tick decided and did (returned for tests, the simulator and logs)."""

    plan: ScalingPlan
    decision_id: str | None = None  # None: not recorded (nothing new)
    launched_worker_ids: list[str] = field(default_factory=list)
    executed: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


class Autoscaler:
    def __init__(self, store: Any, clock: Clock, settings: AutoscalerSettings | None = None) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings or AutoscalerSettings()
        self.replica = AggregateReplica(store, (Worker, LabletInstance, WorkerTemplate, ScalingDecision))
        self.stream_id = ScalingDecision.stream_id_for(self.settings.scope)
        self.next_at: datetime | None = None
        self.decisions = 0
        self._changed = False
        self.view = self._new_view(())
        self.plans = 0
        self.view_mismatches = 0  # full checks that found the incremental snapshot wrong
        self._consolidated_at: datetime | None = None

    # -- the loop body -------------------------------------------------------------------
    def tick(self, *, force: bool = False) -> Decision | None:
        """Plan (and act) if something changed or a planned moment has come; else None."""
        self._catch_up()
        now = self.clock.now()
        changed, self._changed = self._changed, False
        if not (force or changed or self.next_at is None or now >= self.next_at):
            return None
        scaling = self._scaling_for(now)
        for _attempt in range(self.settings.max_conflicts):
            snapshot = self.snapshot(now)
            result = plan(now, snapshot.fleet, snapshot.templates, snapshot.demand, scaling,
                          policy=self.settings.policy)
            try:
                decision = self._record(result, now)
                break
            except ConcurrencyConflict:
                # Another autoscaler decided first: read its decision and workers, plan again.
                self._catch_up()
        else:
            raise ConcurrencyConflict(f"{self.stream_id}: gave up after {self.settings.max_conflicts} conflicts")
        for finished in snapshot.finished:
            self.replica.retire(finished)
            self.view.refresh(finished, None)
        wake = [now + self.settings.interval]
        if result.next_decision_at is not None and result.next_decision_at > now:
            wake.append(result.next_decision_at)
        self.next_at = min(wake)
        if decision.decision_id is not None:
            self._execute(decision, now)
        return decision

    def _scaling_for(self, now: datetime) -> ScalingSettings:
        """The plan's settings: consolidation only when its interval has passed (the
        settings are recorded with the decision, so a replay plans the same)."""
        scaling = self.settings.scaling
        if not scaling.consolidate:
            return scaling
        if self._consolidated_at is not None and now - self._consolidated_at < self.settings.consolidation_interval:
            return replace(scaling, consolidate=False)
        self._consolidated_at = now
        return scaling

    def _catch_up(self) -> None:
        """Read new events; remember whether any could change the next plan (not our own audit)."""
        events = self.replica.catch_up()
        if any(not e.stream_id.startswith("ScalingDecision-") for e in events):
            self._changed = True
        for stream_id in dict.fromkeys(e.stream_id for e in events):
            self.view.refresh(stream_id, self.replica.get(stream_id))

    def snapshot(self, now: datetime) -> Snapshot:
        """The plan's inputs from the incremental view; every ``full_check_every`` plans also
        built afresh and compared (a difference is logged, counted and repaired)."""
        self.plans += 1
        snapshot = self.view.snapshot(now)
        every = self.settings.full_check_every
        if every > 0 and self.plans % every == 0:
            fresh = self.fresh_snapshot(now)
            if fresh != snapshot:
                self.view_mismatches += 1
                log.error("autoscaler: incremental snapshot differs from a fresh one at %s; rebuilt", now)
                self.view = self._new_view((*self.replica.all(Worker), *self.replica.all(WorkerTemplate),
                                            *self.replica.all(LabletInstance)))
                snapshot = fresh
        return snapshot

    def fresh_snapshot(self, now: datetime) -> Snapshot:
        """The plan's inputs built from every aggregate of the replica (the reference)."""
        scaling = self.settings.scaling
        return take_snapshot(
            now, self.replica.all(Worker), self.replica.all(WorkerTemplate), self.replica.all(LabletInstance),
            instantiation_lead=scaling.instantiation_lead, teardown_margin=self.settings.teardown_margin,
        )

    def _new_view(self, aggregates: Iterable[Any]) -> SnapshotView:
        return rebuilt_view(aggregates, instantiation_lead=self.settings.scaling.instantiation_lead,
                            teardown_margin=self.settings.teardown_margin)

    # -- recording -----------------------------------------------------------------------
    def _record(self, result: ScalingPlan, now: datetime) -> Decision:
        current = self.replica.get(self.stream_id)
        signature = _signature(result)
        last = current.last_signature if current is not None else _signature(None)
        if result.is_noop and signature == last:
            return Decision(result)  # nothing to do, and still waiting for the same things
        ctx_base = CommandContext(at=now, actor=ACTOR, causation_id="autoscaler")
        audit = copy.deepcopy(current) if current is not None else ScalingDecision.start(self.settings.scope, ctx_base)
        decision_id = audit.next_decision_id()
        ctx = CommandContext(at=now, actor=ACTOR, causation_id=decision_id, correlation_id=decision_id)
        workers = self._launches(result, decision_id, ctx)
        audit.decide(result.to_dict(), ctx, reason=_reason(result), signature=signature,
                     launched_worker_ids=[w.id for w in workers])
        self.store.save(audit, *workers)
        self.decisions += 1
        return Decision(result, decision_id, [w.id for w in workers])

    def _launches(self, result: ScalingPlan, decision_id: str, ctx: CommandContext) -> list[Worker]:
        workers: list[Worker] = []
        for action in result.of_type(LaunchWorker):
            template = self.replica.get(WorkerTemplate.stream_id_for(action.template))
            if template is None or template.removed:
                log.warning("autoscaler: template %s vanished; launch skipped", action.template)
                continue
            for number in range(action.count):
                worker_id = f"Worker-{uuid5(WORKER_ID_NAMESPACE, f'{decision_id}:{action.template}:{number}')}"
                workers.append(Worker.request(template.spec, ctx, worker_id=worker_id, reason=action.reason))
        return workers

    # -- executing -----------------------------------------------------------------------
    def _execute(self, decision: Decision, now: datetime) -> None:
        assert decision.decision_id is not None
        ctx = CommandContext(at=now, actor=ACTOR, causation_id=decision.decision_id,
                             correlation_id=decision.decision_id)
        forced_stops = {a.worker_id for a in decision.plan.of_type(ForceTerminateLeftovers)}
        for action in decision.plan.actions:
            command = self._command_for(action, ctx, forced_stops)
            if command is None:
                continue
            try:
                command()
                decision.executed.append(action.to_dict())
            except DomainError as error:
                log.info("autoscaler: %s refused: %s", action.kind, error)
                decision.rejected.append({**action.to_dict(), "error": f"{type(error).__name__}: {error}"})
        if decision.rejected:
            def attempt() -> None:
                # The replica's copy, not store.get: the decision stream grows for ever.
                self._catch_up()
                audit = copy.deepcopy(self.replica.get(self.stream_id))
                audit.reject(decision.decision_id, decision.rejected, ctx)
                self.store.save(audit)

            retry_on_conflict(attempt)

    def _command_for(
        self, action: ScalingAction, ctx: CommandContext, forced_stops: set[str]
    ) -> Callable[[], None] | None:
        reason = getattr(action, "reason", "")
        if isinstance(action, RestartWorker):
            return self._on_worker(action.worker_id, lambda w: w.request_restart(ctx, reason=reason))
        if isinstance(action, CancelDrain):
            return self._on_worker(action.worker_id, lambda w: w.cancel_drain(ctx, reason=reason))
        if isinstance(action, StartDraining):
            return self._on_worker(action.worker_id, lambda w: w.start_draining(reason, ctx))
        if isinstance(action, StopWorker):
            # Only a drain timeout may stop a worker that still holds a lab (SPEC §5).
            force = action.worker_id in forced_stops or reason.startswith("drain_timeout")
            return self._on_worker(action.worker_id, lambda w: w.stop(reason, ctx, force=force))
        if isinstance(action, TerminateWorker):
            return self._on_worker(action.worker_id, lambda w: w.terminate("scale_down", ctx))
        if isinstance(action, ForceTerminateLeftovers):
            return lambda: self._terminate_leftovers(action, ctx)
        if isinstance(action, MoveReservation):
            return lambda: self._move(action, ctx)
        return None  # LaunchWorker (saved with the decision), NoAction

    def _on_worker(self, worker_id: str, command: Callable[[Worker], None]) -> Callable[[], None]:
        def run() -> None:
            def attempt() -> None:
                worker = self.store.get(worker_id)
                command(worker)
                self.store.save(worker)

            retry_on_conflict(attempt)

        return run

    def _move(self, action: MoveReservation, ctx: CommandContext) -> None:
        """Consolidation: release the hold on one worker, reserve the same window (ports
        allocated again) on the other and record ``InstanceMoved``, in one atomic save, so a
        racing scheduler or controller conflicts instead of seeing half a move. Refused
        (recorded as rejected) when the lab has started instantiating or no longer fits."""

        def attempt() -> None:
            instance = self.store.get(action.instance_id)
            source = self.store.get(action.from_worker_id)
            target = self.store.get(action.to_worker_id)
            if not isinstance(instance, LabletInstance) or instance.worker_id != action.from_worker_id:
                raise Conflict(f"instance {action.instance_id} is no longer on worker {action.from_worker_id}")
            held = source.ledger.get(action.instance_id)
            if held is None:
                raise Conflict(f"worker {action.from_worker_id} holds nothing for {action.instance_id}")
            affinity = instance.requirements.license_affinity or None
            ports = target.reserve(action.instance_id, held.resources, held.nodes, list(held.ports),
                                   held.hold_start, held.hold_end, ctx, license_affinity=affinity)
            instance.move(action.to_worker_id, ports, action.reason, ctx.causation_id, ctx)
            source.release(action.instance_id, ctx, reason="consolidation")
            self.store.save(instance, source, target)

        retry_on_conflict(attempt)

    def _terminate_leftovers(self, action: ForceTerminateLeftovers, ctx: CommandContext) -> None:
        """An admin's drain timed out: each lab still on the worker is terminated
        (``drain_timeout``) and its hold released, atomically; a booking that has not
        started instantiating is re-queued (the scheduler places it elsewhere), not ended."""
        for instance_id in action.instance_ids:
            def attempt(instance_id: str = instance_id) -> None:
                worker = self.store.get(action.worker_id)
                changed: list[Any] = []
                try:
                    instance = self.store.get(instance_id)
                except NotFound:
                    instance = None
                if isinstance(instance, LabletInstance) and instance.worker_id == action.worker_id:
                    if instance.state is InstanceState.SCHEDULED:
                        instance.unschedule("drain_timeout", ctx)
                        changed.append(instance)
                    elif instance.is_live:
                        instance.terminate("drain_timeout", ctx, detail=f"worker {action.worker_id} drain timed out")
                        changed.append(instance)
                if worker.release(instance_id, ctx, reason="drain_timeout"):
                    changed.append(worker)
                if changed:
                    self.store.save(*changed)

            retry_on_conflict(attempt)


def _signature(result: ScalingPlan | None) -> str:
    """What a plan waits for (deferred launches, unplaceable and late instances).

    A plan without actions is recorded only when this changed since the last recorded
    decision: "why is my lab still queued" has an answer, without a decision per tick.
    """
    waiting: dict[str, Any] = {"deferred": [], "unplaceable": [], "late": []}
    if result is not None:
        waiting = {
            "deferred": [{k: v for k, v in d.to_dict().items() if k != "covers"} | {"covers": len(d.covers)}
                         for d in result.deferred],
            "unplaceable": sorted(result.unplaceable),
            "late": sorted(result.inputs.get("late_minutes", {})),
        }
    return hashlib.sha256(json.dumps(waiting, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _reason(result: ScalingPlan) -> str:
    kinds: dict[str, int] = {}
    for action in result.actions:
        if action.kind == "NoAction":
            continue
        kinds[action.kind] = kinds.get(action.kind, 0) + (action.count if isinstance(action, LaunchWorker) else 1)
    if not kinds:
        noop = next((a.reason for a in result.actions if a.kind == "NoAction"), "")
        waiting = f"; {sum(d.count for d in result.deferred)} launch(es) deferred" if result.deferred else ""
        return (noop or "nothing to do") + waiting
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(kinds.items()))
