"""The instance controller (SPEC §6): instantiation on CML, the user session, collection,
grading, teardown, the stuck-state watchdog and crash-safe reconciliation."""

from processors.instances.controller import InstanceController, MemoryCheckpoints, ReconcileReport
from processors.instances.settings import DEFAULT_TIMEOUTS, LifecycleSettings

__all__ = ["DEFAULT_TIMEOUTS", "InstanceController", "LifecycleSettings", "MemoryCheckpoints", "ReconcileReport"]
