"""NodeLimit: the lab's nodes must fit the worker's license and node headroom."""

from __future__ import annotations

from domain.placement.candidate import LICENSE_NODE_CAPS, WorkerCandidate
from domain.placement.request import PlacementRequest
from domain.placement.plugins import Split
from domain.placement.window import window_peak, window_peaks

__all__ = ["LICENSE_NODE_CAPS", "NodeLimit", "node_limit"]


def node_limit(candidate: WorkerCandidate) -> int:
    """Nodes the worker may run at once (see ``WorkerCandidate.node_limit``)."""
    return candidate.node_limit


class NodeLimit:
    """``node_count`` within the node limit on its own (cheap), then within the headroom
    left by the busiest instant of the hold window (reads the ledger)."""

    name = "NodeLimit"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        limit = candidate.node_limit
        wanted = request.node_count
        if wanted > limit:
            return f"node_count {wanted} exceeds the worker's node limit {limit}"
        _, peak_nodes = window_peak(request, candidate)
        if peak_nodes + wanted > limit:
            return (
                f"nodes over window: {peak_nodes} reserved at peak + {wanted} requested "
                f"> limit {limit}"
            )
        return None

    def filter_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
        wanted = request.node_count
        small_enough = [c for c in candidates if wanted <= c.node_limit]
        peaks = window_peaks(request, small_enough)
        passed = [c for c, (_, nodes) in zip(small_enough, peaks, strict=True) if nodes + wanted <= c.node_limit]
        if len(passed) == len(candidates):
            return passed, []
        kept = {id(c) for c in passed}
        rejected = [(c.worker_id, self.filter(request, c)) for c in candidates if id(c) not in kept]
        return passed, rejected  # type: ignore[return-value]
