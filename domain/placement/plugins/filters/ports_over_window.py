"""PortsOverWindow: enough ports of the worker's range free for the whole hold."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest


class PortsOverWindow:
    """A port is free when no reservation overlapping the window holds it; the lab
    needs one per name in its port template."""

    name = "PortsOverWindow"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        wanted = len(request.port_names)
        if wanted == 0:
            return None
        free = candidate.ledger.free_port_count(request.hold_start, request.hold_end)
        if free < wanted:
            return f"ports over window: {free} free, {wanted} needed"
        return None
