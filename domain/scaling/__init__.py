"""The autoscaler's decision code: a pure, replayable scaling plan (SPEC §5).

Call :func:`plan` with a snapshot of the fleet, the templates, the demand (queued and
booked) and the settings; record ``ScalingPlan.to_dict()`` as the ``ScalingDecided``
payload; execute its actions. See docs/autoscaler.md.
"""

from domain.scaling.actions import (
    CancelDrain,
    DeferredLaunch,
    ForceTerminateLeftovers,
    LaunchWorker,
    MoveReservation,
    NoAction,
    RestartWorker,
    ScalingAction,
    StartDraining,
    StopWorker,
    TerminateWorker,
)
from domain.scaling.inputs import DemandItem, FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.plan import POLICY_NAMES, ScalingPlan, plan, record_inputs, replay

__all__ = [
    "POLICY_NAMES",
    "CancelDrain",
    "DeferredLaunch",
    "DemandItem",
    "FleetWorker",
    "ForceTerminateLeftovers",
    "LaunchWorker",
    "MoveReservation",
    "NoAction",
    "RestartWorker",
    "ScalingAction",
    "ScalingPlan",
    "ScalingSettings",
    "StartDraining",
    "StopWorker",
    "TemplateOffer",
    "TerminateWorker",
    "WorkerState",
    "plan",
    "record_inputs",
    "replay",
]
