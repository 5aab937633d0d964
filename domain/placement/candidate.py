"""A worker as the placement pipeline sees it: the second input of a decision.

Deliberately not the Worker aggregate: a candidate is a snapshot of the few facts the
filters and scores read (state, template facts, readiness, the reservation ledger), so
the pipeline imports no aggregate and a decision can be replayed from recorded inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from domain.ledger import ReservationLedger

# Worker states, by value (the Worker aggregate's enum values are these strings).
RUNNING = "RUNNING"
PENDING = "PENDING"
PROVISIONING = "PROVISIONING"
STOPPED = "STOPPED"
DRAINING = "DRAINING"
STOPPING = "STOPPING"
TERMINATED = "TERMINATED"
FAILED = "FAILED"

#: states that take a new instance once the worker is (expected to be) ready in time
BECOMING_READY_STATES = frozenset({PENDING, PROVISIONING, STOPPED})

#: node caps of the CML license types (SPEC §3.1); a template's max_nodes may be lower
LICENSE_NODE_CAPS: dict[str, int] = {"PERSONAL": 20, "ENTERPRISE": 500}


@dataclass(frozen=True, slots=True)
class WorkerCandidate:
    """One worker's facts at decision time.

    ``expected_ready_at`` is ``None`` for a RUNNING worker (ready now) or when unknown.
    ``ami_name`` may be a concrete AMI name or the template's AMI glob; ``ami_version``
    is the CML version it carries (e.g. ``"2.9.1"``).
    """

    worker_id: str
    state: str
    template_name: str
    license_type: str
    max_nodes: int
    nested_virt: bool
    ami_name: str
    ami_version: str
    expected_ready_at: datetime | None
    ledger: ReservationLedger
    #: nodes the worker may run at once: max_nodes capped by the license type and by
    #: the ledger's own limit (the ledger refuses more, so placing there would fail)
    node_limit: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Accept the aggregate's enum as well as its value; the pipeline compares strings.
        if isinstance(self.state, Enum):
            object.__setattr__(self, "state", str(self.state.value))
        limit = min(self.max_nodes, self.ledger.max_nodes)
        cap = LICENSE_NODE_CAPS.get(self.license_type)
        object.__setattr__(self, "node_limit", limit if cap is None else min(limit, cap))
