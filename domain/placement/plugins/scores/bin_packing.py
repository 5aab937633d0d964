"""BinPacking: prefer the fullest worker over the window, so others can drain and stop."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.plugins.filters.node_limit import node_limit
from domain.placement.request import PlacementRequest
from domain.resources import Resources


class BinPacking:
    """Mean utilisation of cpu, memory and nodes at the window's peak *after* adding the
    request, as a percentage (0-100). Storage is left out: it is rarely the bottleneck
    and would dilute the signal. Rounded to 4 decimals so scores compare stably."""

    name = "BinPacking"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def score(self, request: PlacementRequest, candidate: WorkerCandidate) -> float:
        peak, peak_nodes = candidate.ledger.peak(request.hold_start, request.hold_end)
        return bin_packing_score(
            peak, peak_nodes, request, candidate.ledger.capacity, node_limit(candidate)
        )


def bin_packing_score(
    peak: Resources,
    peak_nodes: int,
    request: PlacementRequest,
    capacity: Resources,
    nodes_limit: int,
) -> float:
    """The score from a window peak; shared with the naive baseline so both agree."""
    wanted = request.requirements
    ratios = []
    if capacity.cpu_cores > 0:
        ratios.append((peak.cpu_cores + wanted.cpu_cores) / capacity.cpu_cores)
    if capacity.memory_gb > 0:
        ratios.append((peak.memory_gb + wanted.memory_gb) / capacity.memory_gb)
    if nodes_limit > 0:
        ratios.append((peak_nodes + request.node_count) / nodes_limit)
    if not ratios:
        return 0.0
    mean = sum(ratios) / len(ratios)
    return round(100.0 * min(1.0, max(0.0, mean)), 4)
