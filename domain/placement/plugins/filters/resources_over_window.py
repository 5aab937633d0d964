"""ResourcesOverWindow: cpu, memory and storage must fit at every instant of the hold."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest
from domain.placement.plugins import Split
from domain.placement.window import window_peak, window_peaks
from domain.resources import TOLERANCE


class ResourcesOverWindow:
    """For each of cpu/memory/storage: the peak already reserved over ``[hold_start,
    hold_end)`` plus the request must stay within the worker's capacity. Each field's
    constraint is independent, so the per-field peak is exact."""

    name = "ResourcesOverWindow"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        capacity = candidate.ledger.capacity
        wanted = request.requirements
        # Cheap first: a request larger than the whole worker needs no ledger read.
        if not (
            wanted.cpu_cores <= capacity.cpu_cores + TOLERANCE
            and wanted.memory_gb <= capacity.memory_gb + TOLERANCE
            and wanted.storage_gb <= capacity.storage_gb + TOLERANCE
        ):
            return "; ".join(
                f"{field} {getattr(wanted, field):g} requested > capacity {getattr(capacity, field):g}"
                for field in wanted.exceeded_fields(capacity)
            )
        peak, _ = window_peak(request, candidate)
        # Unrolled: this runs for every worker that passed the cheap filters.
        if (
            peak.cpu_cores + wanted.cpu_cores <= capacity.cpu_cores + TOLERANCE
            and peak.memory_gb + wanted.memory_gb <= capacity.memory_gb + TOLERANCE
            and peak.storage_gb + wanted.storage_gb <= capacity.storage_gb + TOLERANCE
        ):
            return None
        over = [
            field
            for field in ("cpu_cores", "memory_gb", "storage_gb")
            if getattr(peak, field) + getattr(wanted, field) > getattr(capacity, field) + TOLERANCE
        ]
        return "; ".join(
            f"{field} over window: {getattr(peak, field):g} reserved at peak + "
            f"{getattr(wanted, field):g} requested > capacity {getattr(capacity, field):g}"
            for field in over
        )

    def filter_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
        wanted = request.requirements
        cpu, memory, storage = wanted.cpu_cores, wanted.memory_gb, wanted.storage_gb
        passed: list[WorkerCandidate] = []
        rejected: list[tuple[str, str]] = []
        for candidate, (peak, _) in zip(candidates, window_peaks(request, candidates), strict=True):
            capacity = candidate.ledger.capacity
            # exactly filter()'s test; filter() only runs to word the rejection
            if (
                peak.cpu_cores + cpu <= capacity.cpu_cores + TOLERANCE
                and peak.memory_gb + memory <= capacity.memory_gb + TOLERANCE
                and peak.storage_gb + storage <= capacity.storage_gb + TOLERANCE
            ):
                passed.append(candidate)
            else:
                rejected.append((candidate.worker_id, self.filter(request, candidate)))  # type: ignore[arg-type]
        return passed, rejected
