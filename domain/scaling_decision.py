"""The scaling audit: every autoscaler decision, with its inputs and reasons (SPEC §3.5, §5).

The autoscaler (``processors/autoscaler``) plans and acts; this aggregate only records.

All decisions of one fleet go to ONE stream, ``ScalingDecision-<uuid5(scope)>``. That
stream is the autoscaler's lock without a leader: a decision is saved with the new
workers it launches in one atomic save, at the next version of this stream. Two
autoscalers planning from the same state race for the same version; the loser gets a
``ConcurrencyConflict``, reads the winner's decision *and its workers*, and plans again
— so a pending worker is never launched twice (SPEC §5).

Events:
- ``ScalingAuditStarted`` opens the stream (first decision of a deployment);
- ``ScalingDecided``: ``ScalingPlan.to_dict()`` (actions with reasons, deferred launches,
  capacity plan, inputs summary: demand, capacity, horizon) plus the ids of the workers
  it launched and a one-line ``reason``;
- ``ScalingActionsRejected``: actions of a decision the aggregates refused when executed
  (e.g. a stop refused because a lab became active meanwhile), with the error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate, event_id, named_stream_id
from domain.context import CommandContext

DEFAULT_SCOPE = "default"


class ScalingDecision(LrmAggregate):
    class ScalingAuditStarted(LrmAggregate.Created):
        scope: str

        def apply(self, aggregate: ScalingDecision) -> None:
            aggregate.scope = self.scope
            aggregate.decisions = 0
            aggregate.last_decision_id = None
            aggregate.last_signature = None

    class ScalingDecided(LrmAggregate.Event):
        decision_id: str
        policy: str
        reason: str
        actions: list[dict[str, Any]]
        deferred: list[dict[str, Any]]
        unplaceable: list[str]
        next_decision_at: str | None
        capacity_plan: list[dict[str, Any]]
        inputs: dict[str, Any]
        launched_worker_ids: list[str]
        signature: str

        def apply(self, aggregate: ScalingDecision) -> None:
            aggregate.decisions += 1
            aggregate.last_decision_id = self.decision_id
            aggregate.last_signature = self.signature

    class ScalingActionsRejected(LrmAggregate.Event):
        decision_id: str
        rejected: list[dict[str, Any]]

        def apply(self, aggregate: ScalingDecision) -> None:
            pass

    if TYPE_CHECKING:
        scope: str
        decisions: int
        last_decision_id: str | None
        last_signature: str | None

    @staticmethod
    def stream_id_for(scope: str = DEFAULT_SCOPE) -> str:
        return named_stream_id("ScalingDecision", scope)

    @classmethod
    def start(cls, scope: str, ctx: CommandContext) -> ScalingDecision:
        return cls._create_with(cls.ScalingAuditStarted, ctx, id=cls.stream_id_for(scope), scope=scope)

    def next_decision_id(self) -> str:
        """The id the next ``ScalingDecided`` will have (its deterministic event id)."""
        return str(event_id(self.id, self.version + 1))

    def decide(
        self, payload: dict[str, Any], ctx: CommandContext, *, reason: str, launched_worker_ids: list[str],
        signature: str,
    ) -> str:
        decision_id = self.next_decision_id()
        self._record(
            self.ScalingDecided, ctx, decision_id=decision_id, policy=payload["policy"], reason=reason,
            actions=payload["actions"], deferred=payload["deferred"], unplaceable=payload["unplaceable"],
            next_decision_at=payload["next_decision_at"], capacity_plan=payload["capacity_plan"],
            inputs=payload["inputs"], launched_worker_ids=list(launched_worker_ids), signature=signature,
        )
        return decision_id

    def reject(self, decision_id: str, rejected: list[dict[str, Any]], ctx: CommandContext) -> None:
        self._record(self.ScalingActionsRejected, ctx, decision_id=decision_id, rejected=rejected)
