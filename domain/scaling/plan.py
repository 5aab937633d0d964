"""``plan(...)``: one scaling decision, computed from a snapshot, recordable and replayable.

Pure: ``now`` is passed in, nothing is read or written. The same inputs give an equal
plan (actions in a canonical order), so a recorded ``ScalingDecided`` payload can be
checked by planning again, and the simulator can compare policies on the same demand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.errors import InvalidInput
from domain.scaling.actions import (
    SCALE_DOWN_ACTIONS,
    DeferredLaunch,
    LaunchWorker,
    PlannedCapacity,
    NoAction,
    RestartWorker,
    ScalingAction,
)
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings, TemplateOffer


@dataclass(frozen=True)
class ScalingPlan:
    """What to do now, what is planned for later, and the inputs that drove it."""

    now: datetime
    policy: str
    actions: tuple[ScalingAction, ...]
    deferred: tuple[DeferredLaunch, ...] = ()
    unplaceable: tuple[str, ...] = ()
    next_decision_at: datetime | None = None
    capacity_plan: tuple[PlannedCapacity, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return all(isinstance(a, NoAction) for a in self.actions)

    def of_type(self, kind: type[ScalingAction]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]

    @property
    def launches(self) -> list[LaunchWorker]:
        return self.of_type(LaunchWorker)

    @property
    def restarts(self) -> list[RestartWorker]:
        return self.of_type(RestartWorker)

    def launched_count(self, template: str | None = None) -> int:
        return sum(a.count for a in self.launches if template is None or a.template == template)

    def scale_down(self) -> list[ScalingAction]:
        return [a for a in self.actions if isinstance(a, SCALE_DOWN_ACTIONS)]

    def to_dict(self) -> dict[str, Any]:
        """The ``ScalingDecided`` event payload (JSON-friendly)."""
        return {
            "at": self.now.isoformat(),
            "policy": self.policy,
            "actions": [a.to_dict() for a in self.actions],
            "deferred": [d.to_dict() for d in self.deferred],
            "unplaceable": list(self.unplaceable),
            "next_decision_at": self.next_decision_at.isoformat() if self.next_decision_at else None,
            "capacity_plan": [c.to_dict() for c in self.capacity_plan],
            "inputs": self.inputs,
        }


PolicyFn = Callable[
    [datetime, Sequence[FleetWorker], Sequence[TemplateOffer], Sequence[DemandItem], ScalingSettings], ScalingPlan
]


def _policies() -> dict[str, PolicyFn]:
    # Imported here: the policies build ScalingPlan objects from this module.
    from domain.scaling.policies.default import plan_default
    from domain.scaling.policies.reactive import plan_reactive
    from domain.scaling.policies.static import plan_static

    return {"default": plan_default, "reactive": plan_reactive, "static": plan_static}


POLICY_NAMES = ("default", "reactive", "static")


def plan(
    now: datetime,
    fleet: Iterable[FleetWorker],
    templates: Iterable[TemplateOffer],
    demand: Iterable[DemandItem],
    settings: ScalingSettings | None = None,
    policy: str = "default",
) -> ScalingPlan:
    """Decide the scaling actions at ``now`` under ``policy`` (``default``, ``reactive``, ``static``)."""
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    policies = _policies()
    if policy not in policies:
        raise InvalidInput("policy", f"unknown scaling policy {policy!r} (known: {', '.join(POLICY_NAMES)})")
    # Canonical input order, so equal inputs in any order give an equal plan.
    fleet = tuple(sorted(fleet, key=lambda w: w.worker_id))
    templates = tuple(sorted(templates, key=lambda t: t.name))
    demand = tuple(sorted(demand, key=lambda d: d.instance_id))
    return policies[policy](now, fleet, templates, demand, settings or ScalingSettings())


def record_inputs(
    now: datetime,
    fleet: Iterable[FleetWorker],
    templates: Iterable[TemplateOffer],
    demand: Iterable[DemandItem],
    settings: ScalingSettings | None = None,
) -> dict[str, Any]:
    """The complete inputs of a decision, JSON-friendly: what :func:`replay` needs.

    (``ScalingPlan.inputs`` is only a summary; store this when a decision must be re-run,
    e.g. ``lablet replay`` under another policy.)
    """
    return {
        "now": now.isoformat(),
        "fleet": [w.to_dict() for w in sorted(fleet, key=lambda w: w.worker_id)],
        "templates": [t.to_dict() for t in sorted(templates, key=lambda t: t.name)],
        "demand": [d.to_dict() for d in sorted(demand, key=lambda d: d.instance_id)],
        "settings": (settings or ScalingSettings()).to_dict(),
    }


def replay(record: dict[str, Any], policy: str = "default") -> ScalingPlan:
    """Plan again from :func:`record_inputs` output (same policy → an equal plan)."""
    return plan(
        datetime.fromisoformat(record["now"]),
        [FleetWorker.from_dict(w) for w in record["fleet"]],
        [TemplateOffer.from_dict(t) for t in record["templates"]],
        [DemandItem.from_dict(d) for d in record["demand"]],
        ScalingSettings.from_dict(record["settings"]),
        policy=policy,
    )
