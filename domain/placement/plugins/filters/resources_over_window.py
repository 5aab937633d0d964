"""ResourcesOverWindow: cpu, memory and storage must fit at every instant of the hold."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest
from domain.resources import TOLERANCE


class ResourcesOverWindow:
    """For each of cpu/memory/storage: the peak already reserved over ``[hold_start,
    hold_end)`` plus the request must stay within the worker's capacity. Each field's
    constraint is independent, so the per-field peak is exact."""

    name = "ResourcesOverWindow"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        ledger = candidate.ledger
        capacity = ledger.capacity
        wanted = request.requirements
        # Cheap first: a request larger than the whole worker needs no ledger scan.
        too_big = wanted.exceeded_fields(capacity)
        if too_big:
            return "; ".join(
                f"{field} {getattr(wanted, field):g} requested > capacity {getattr(capacity, field):g}"
                for field in too_big
            )
        peak, _ = ledger.peak(request.hold_start, request.hold_end)
        over = [
            field
            for field in ("cpu_cores", "memory_gb", "storage_gb")
            if getattr(peak, field) + getattr(wanted, field) > getattr(capacity, field) + TOLERANCE
        ]
        if not over:
            return None
        return "; ".join(
            f"{field} over window: {getattr(peak, field):g} reserved at peak + "
            f"{getattr(wanted, field):g} requested > capacity {getattr(capacity, field):g}"
            for field in over
        )
