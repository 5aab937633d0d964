"""BinPacking: prefer the fullest worker over the window, so others can drain and stop."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest
from domain.placement.window import window_peak, window_peaks
from domain.resources import Resources


class BinPacking:
    """Mean utilisation of cpu, memory and nodes at the window's peak *after* adding the
    request, as a percentage (0-100). Storage is left out: it is rarely the bottleneck
    and would dilute the signal. Rounded to 4 decimals so scores compare stably."""

    name = "BinPacking"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def score(self, request: PlacementRequest, candidate: WorkerCandidate) -> float:
        peak, peak_nodes = window_peak(request, candidate)
        return bin_packing_score(peak, peak_nodes, request, candidate.ledger.capacity, candidate.node_limit)

    def score_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> list[float]:
        wanted = request.requirements
        cpu, memory, nodes_wanted = wanted.cpu_cores, wanted.memory_gb, request.node_count
        scores = []
        for candidate, (peak, nodes) in zip(candidates, window_peaks(request, candidates), strict=True):
            capacity = candidate.ledger.capacity
            limit = candidate.node_limit
            if capacity.cpu_cores > 0 and capacity.memory_gb > 0 and limit > 0:
                # bin_packing_score's arithmetic, unrolled for the usual worker
                mean = (
                    (peak.cpu_cores + cpu) / capacity.cpu_cores
                    + (peak.memory_gb + memory) / capacity.memory_gb
                    + (nodes + nodes_wanted) / limit
                ) / 3
                scores.append(round(100.0 * min(1.0, max(0.0, mean)), 4))
            else:
                scores.append(bin_packing_score(peak, nodes, request, capacity, limit))
        return scores

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
