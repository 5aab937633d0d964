"""The simulator (SPEC §9): the real processors on a virtual clock, workloads, KPIs, replay.

``harness.Simulation`` runs a ``workload.Workload`` and returns ``SimulationResult`` whose
``kpis`` come from ``kpis.KpiCollector``; ``demand.workload_from_log`` turns a recorded
event log back into a workload (``lablet replay``). The adapters (store, clock, cloud, CML,
artifacts) are passed in by the composition root (``api/simulate.py``).
"""

from processors.simulation.harness import Simulation, SimulationResult, SimulationSettings
from processors.simulation.kpis import KpiCollector
from processors.simulation.workload import (
    AdminDrain,
    Booking,
    CloudProfile,
    DefinitionProfile,
    Workload,
    WorkloadError,
    load_workload,
    workload_from_dict,
)

__all__ = [
    "AdminDrain",
    "Booking",
    "CloudProfile",
    "DefinitionProfile",
    "KpiCollector",
    "Simulation",
    "SimulationResult",
    "SimulationSettings",
    "Workload",
    "WorkloadError",
    "load_workload",
    "workload_from_dict",
]
