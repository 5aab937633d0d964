"""WorkerState: only a worker that is, or will be in time, able to take new labs."""

from __future__ import annotations

from domain.placement.candidate import BECOMING_READY_STATES, RUNNING, WorkerCandidate
from domain.placement.plugins import Split
from domain.placement.request import PlacementRequest


class WorkerState:
    """RUNNING passes; PENDING/PROVISIONING/STOPPED pass when expected ready by
    ``request.ready_by`` (timeslot start minus the instantiation lead; "now" for ASAP);
    DRAINING, STOPPING, TERMINATED and FAILED never take a new instance."""

    name = "WorkerState"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        state = candidate.state
        if state == RUNNING:
            return None
        if state not in BECOMING_READY_STATES:
            return f"worker is {state} and accepts no new instances"
        ready_at = candidate.expected_ready_at
        if ready_at is None:
            return f"worker is {state} with no expected ready time"
        if ready_at > request.ready_by:
            return (
                f"worker is {state}, expected ready at {ready_at.isoformat()}, "
                f"after {request.ready_by.isoformat()} when instantiation starts"
            )
        return None

    def filter_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
        ready_by = request.ready_by
        passed: list[WorkerCandidate] = []
        rejected: list[tuple[str, str]] = []
        for candidate in candidates:
            state = candidate.state
            if state == RUNNING or (
                state in BECOMING_READY_STATES
                and candidate.expected_ready_at is not None
                and candidate.expected_ready_at <= ready_by
            ):
                passed.append(candidate)
            else:
                rejected.append((candidate.worker_id, self.filter(request, candidate)))  # type: ignore[arg-type]
        return passed, rejected
