"""NodeLimit: the lab's nodes must fit the worker's license and node headroom."""

from __future__ import annotations

from domain.placement.candidate import WorkerCandidate
from domain.placement.request import PlacementRequest

#: node caps of the CML license types (SPEC §3.1); a template's max_nodes may be lower
LICENSE_NODE_CAPS: dict[str, int] = {"PERSONAL": 20, "ENTERPRISE": 500}


def node_limit(candidate: WorkerCandidate) -> int:
    """Nodes the worker may run at once: its max_nodes, capped by its license type and
    by its ledger's limit (the ledger refuses more, so placing there would fail)."""
    limit = min(candidate.max_nodes, candidate.ledger.max_nodes)
    cap = LICENSE_NODE_CAPS.get(candidate.license_type)
    return limit if cap is None else min(limit, cap)


class NodeLimit:
    """``node_count`` within the node limit on its own (cheap), then within the headroom
    left by the busiest instant of the hold window (reads the ledger)."""

    name = "NodeLimit"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        limit = node_limit(candidate)
        wanted = request.node_count
        if wanted > limit:
            return f"node_count {wanted} exceeds the worker's node limit {limit}"
        _, peak_nodes = candidate.ledger.peak(request.hold_start, request.hold_end)
        if peak_nodes + wanted > limit:
            return (
                f"nodes over window: {peak_nodes} reserved at peak + {wanted} requested "
                f"> limit {limit}"
            )
        return None
