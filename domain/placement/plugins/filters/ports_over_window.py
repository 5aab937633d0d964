"""PortsOverWindow: enough ports of the worker's range free for the whole hold."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest
from domain.placement.plugins import Split
from domain.placement.window import window_free_ports, windows_free_ports


class PortsOverWindow:
    """A port is free when no reservation overlapping the window holds it; the lab
    needs one per name in its port template."""

    name = "PortsOverWindow"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        wanted = len(request.port_names)
        if wanted == 0:
            return None
        free = window_free_ports(request, candidate)
        if free < wanted:
            return f"ports over window: {free} free, {wanted} needed"
        return None

    def filter_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
        wanted = len(request.port_names)
        if wanted == 0:
            return list(candidates), []
        passed: list[WorkerCandidate] = []
        rejected: list[tuple[str, str]] = []
        for candidate, free in zip(candidates, windows_free_ports(request, candidates), strict=True):
            if free >= wanted:
                passed.append(candidate)
            else:
                rejected.append((candidate.worker_id, f"ports over window: {free} free, {wanted} needed"))
        return passed, rejected
