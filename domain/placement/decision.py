"""The outcome of one placement, with everything needed to explain it.

A ``PlacementDecision`` is the payload of ``PlacementDecided`` / ``PlacementFailed``:
which workers were considered, why each rejected one failed (plugin and reason), the
scores of the rest, the chosen worker, and - when nothing fits - what capacity would
be needed. ``to_dict``/``from_dict`` round-trip it through JSON unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

PLACED = "placed"
UNPLACEABLE = "unplaceable"

#: one rejection: ``{"plugin": <filter name>, "reason": <text>}``
Rejection = dict[str, str]


@dataclass(frozen=True)
class PlacementDecision:
    instance_id: str
    chosen_worker_id: str | None
    #: every worker considered, in the order given
    candidates: list[str]
    #: rejected worker id -> its failing filters (the first one, or all when asked)
    rejections: dict[str, list[Rejection]]
    #: feasible worker id -> score plugin name -> score (0-100)
    scores: dict[str, dict[str, float]]
    #: feasible worker id -> weighted mean of its scores (0-100)
    total_scores: dict[str, float]
    policy: str
    policy_version: str
    outcome: str
    #: feasible workers, best first (the chosen worker is ``ranking[0]``)
    ranking: list[str] = field(default_factory=list)
    #: when unplaceable: the request's demand and rejection counts by plugin
    needed: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.outcome not in (PLACED, UNPLACEABLE):
            raise ValueError(f"outcome must be {PLACED!r} or {UNPLACEABLE!r}, got {self.outcome!r}")
        if (self.outcome == PLACED) != (self.chosen_worker_id is not None):
            raise ValueError("a placed decision names its worker; an unplaceable one does not")

    @property
    def placed(self) -> bool:
        return self.outcome == PLACED

    @property
    def event_name(self) -> str:
        """The event this decision is recorded as."""
        return "PlacementDecided" if self.placed else "PlacementFailed"

    def reasons_for(self, worker_id: str) -> list[str]:
        """Why ``worker_id`` was rejected (empty when it was feasible or not considered)."""
        return [rejection["reason"] for rejection in self.rejections.get(worker_id, [])]

    def rejection_counts(self) -> dict[str, int]:
        """How many workers each filter plugin rejected."""
        return rejection_counts(self.rejections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "chosen_worker_id": self.chosen_worker_id,
            "outcome": self.outcome,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "candidates": list(self.candidates),
            "rejections": {
                worker_id: [dict(rejection) for rejection in rejections]
                for worker_id, rejections in self.rejections.items()
            },
            "scores": {worker_id: dict(scores) for worker_id, scores in self.scores.items()},
            "total_scores": dict(self.total_scores),
            "ranking": list(self.ranking),
            "needed": _copy_json(self.needed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlacementDecision:
        return cls(
            instance_id=data["instance_id"],
            chosen_worker_id=data.get("chosen_worker_id"),
            candidates=list(data.get("candidates", [])),
            rejections={
                worker_id: [
                    {"plugin": str(r["plugin"]), "reason": str(r["reason"])} for r in rejections
                ]
                for worker_id, rejections in data.get("rejections", {}).items()
            },
            scores={
                worker_id: {name: float(value) for name, value in scores.items()}
                for worker_id, scores in data.get("scores", {}).items()
            },
            total_scores={w: float(v) for w, v in data.get("total_scores", {}).items()},
            policy=data["policy"],
            policy_version=str(data["policy_version"]),
            outcome=data["outcome"],
            ranking=list(data.get("ranking", [])),
            needed=_copy_json(data.get("needed")),
        )


def rejection_counts(rejections: dict[str, list[Rejection]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for worker_rejections in rejections.values():
        if len(worker_rejections) == 1:  # the usual case: the first failing filter only
            counts[worker_rejections[0]["plugin"]] += 1
        else:
            counts.update({rejection["plugin"] for rejection in worker_rejections})
    return dict(sorted(counts.items()))


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value
