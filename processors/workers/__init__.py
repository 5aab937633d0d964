"""The worker controller (SPEC §3.4): makes the cloud match each worker's state, and records what the cloud did."""

from processors.workers.controller import ReadyCheck, TickReport, WorkerController, WorkerControllerSettings

__all__ = ["ReadyCheck", "TickReport", "WorkerController", "WorkerControllerSettings"]
