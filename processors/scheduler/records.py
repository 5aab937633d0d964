"""What a placement decision looks like once recorded (``PlacementDecided``/``PlacementFailed``).

A decision over a 1 000-worker fleet explains every worker: recorded whole, that is
~100 kB per event. The record keeps the full detail up to ``detail_limit`` workers and,
beyond it, the counts by filter plus the detail of the first ``detail_limit`` rejected
workers (ledger-related rejections first: those are the informative ones) and of the
best ``detail_limit`` feasible ones. ``truncated`` says when something was left out.

Nothing is lost for an audit: ``inputs`` holds the request and the log position the
scheduler had folded when it decided, so replaying the policy over the log up to that
position gives the whole decision again (``tests/scheduler`` proves it).
"""

from __future__ import annotations

from typing import Any

from domain.placement import PlacementDecision, PlacementRequest

DEFAULT_DETAIL_LIMIT = 20

# Rejections that say something about capacity are shown before the ones that only say
# "wrong kind of worker".
_CHEAP_FILTERS = ("LicenseAffinity", "WorkerState", "NestedVirtAndAmi")


def decision_record(
    decision: PlacementDecision,
    request: PlacementRequest,
    fleet_position: int,
    *,
    detail_limit: int = DEFAULT_DETAIL_LIMIT,
    pending: list[list[str]] | None = None,
    pruned: int = 0,
    shortlist: bool = False,
) -> dict[str, Any]:
    """``pending``: ``[worker id, instance id]`` holds the scheduler had applied but not yet
    saved (earlier placements of the same batch, saved with this one). Linear in the
    fleet: this runs for every placement."""
    rejections = decision.rejections
    informative: list[str] = []  # capacity reasons first, then "wrong kind of worker"
    other: list[str] = []
    counts: dict[str, int] = {}
    for worker_id, reasons in rejections.items():
        first = reasons[0]["plugin"]
        if len(reasons) == 1:
            counts[first] = counts.get(first, 0) + 1
        else:
            for plugin in {r["plugin"] for r in reasons}:
                counts[plugin] = counts.get(plugin, 0) + 1
        if first in _CHEAP_FILTERS:
            if len(other) < detail_limit:
                other.append(worker_id)
        elif len(informative) < detail_limit:
            informative.append(worker_id)
    shown = (informative + other)[:detail_limit]
    ranking = decision.ranking[:detail_limit]
    candidate_count = len(decision.candidates)
    return {
        "instance_id": decision.instance_id,
        "outcome": decision.outcome,
        "chosen_worker_id": decision.chosen_worker_id,
        "policy": decision.policy,
        "policy_version": decision.policy_version,
        "candidate_count": candidate_count,
        "feasible_count": len(decision.ranking),
        "rejections_by_plugin": dict(sorted(counts.items())),
        "candidates": sorted(decision.candidates) if candidate_count <= detail_limit else [],
        "ranking": ranking,
        "scores": {w: dict(decision.scores[w]) for w in ranking},
        "total_scores": {w: decision.total_scores[w] for w in ranking},
        "rejections": {w: [dict(r) for r in rejections[w]] for w in sorted(shown)},
        "needed": _copy(decision.needed),
        "truncated": candidate_count > detail_limit,
        #: workers not evaluated: their best possible score could not beat the chosen one
        "pruned": pruned,
        "inputs": {"request": request.to_dict(), "fleet_position": fleet_position, "pending": list(pending or []),
                   "shortlist": shortlist},
    }


def failure_summary(record: dict[str, Any]) -> str:
    """One line saying why nothing fitted; the same line means the same situation, so a
    queued instance re-tried without change records nothing new."""
    if record.get("reason"):
        return str(record["reason"])
    if not record["candidate_count"]:
        return "no workers"
    counts = ", ".join(f"{plugin} {n}" for plugin, n in sorted(record["rejections_by_plugin"].items()))
    return f"no worker fits ({record['candidate_count']} considered: {counts})"


def recovered_record(instance_id: str, worker_id: str, fleet_position: int, reason: str) -> dict[str, Any]:
    """The record of a placement completed from a reservation found on a worker (the
    scheduler stopped between reserving and scheduling; its decision was never saved)."""
    return {
        "instance_id": instance_id,
        "outcome": "placed",
        "chosen_worker_id": worker_id,
        "recovered": True,
        "reason": reason,
        "inputs": {"fleet_position": fleet_position},
    }


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
