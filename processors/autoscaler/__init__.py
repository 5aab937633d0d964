"""The autoscaler process manager (SPEC §5): plans with ``domain.scaling``, records ``ScalingDecided``, acts."""

from processors.autoscaler.autoscaler import ACTOR, Autoscaler, AutoscalerSettings, Decision
from domain.scaling_decision import ScalingDecision

__all__ = ["ACTOR", "Autoscaler", "AutoscalerSettings", "Decision", "ScalingDecision"]
