"""The naive placement baseline: what the pipeline is measured (and checked) against.

Every worker gets every check (no short-circuit), and capacity over the window is found
by brute force: the window is cut into one-minute steps and, for each step, every
reservation of the worker is scanned. It shares no capacity code with the ledger, so
agreeing with the pipeline on random inputs is evidence both are right. It is exact
when reservation boundaries fall on the window's minute grid (the tests keep them
there); off the grid it only errs on the safe side (a partly covered minute counts
as covered).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from domain.ledger import Reservation
from domain.placement.candidate import BECOMING_READY_STATES, RUNNING, WorkerCandidate
from domain.placement.decision import PLACED, UNPLACEABLE, PlacementDecision, Rejection
from domain.placement.pipeline import DEFAULT_POLICY, DEFAULT_POLICY_VERSION, needed_for
from domain.placement.plugins.filters.nested_virt_and_ami import version_key
from domain.placement.plugins.scores.bin_packing import bin_packing_score
from domain.placement.request import PlacementRequest
from domain.resources import TOLERANCE, Resources

STEP = timedelta(minutes=1)


def naive_decide(
    request: PlacementRequest,
    candidates: Iterable[WorkerCandidate],
    policy_name: str = DEFAULT_POLICY,
    policy_version: str = DEFAULT_POLICY_VERSION,
) -> PlacementDecision:
    """The default pipeline's decision, computed the slow way. Rejections list every
    failing check (in the pipeline's filter order), like ``record_all_rejections``."""
    worker_ids: list[str] = []
    rejections: dict[str, list[Rejection]] = {}
    scores: dict[str, dict[str, float]] = {}
    total_scores: dict[str, float] = {}
    ready_keys: dict[str, float] = {}
    for candidate in candidates:
        worker_ids.append(candidate.worker_id)
        peak, peak_nodes = _grid_peak(candidate.ledger.reservations(), request.hold_start, request.hold_end)
        failed = [
            {"plugin": plugin, "reason": reason}
            for plugin, reason in (
                ("LicenseAffinity", _license(request, candidate)),
                ("WorkerState", _state(request, candidate)),
                ("NestedVirtAndAmi", _image(request, candidate)),
                ("NodeLimit", _nodes(request, candidate, peak_nodes)),
                ("ResourcesOverWindow", _resources(request, candidate, peak)),
                ("PortsOverWindow", _ports(request, candidate)),
            )
            if reason is not None
        ]
        if failed:
            rejections[candidate.worker_id] = failed
            continue
        score = bin_packing_score(peak, peak_nodes, request, candidate.ledger.capacity, candidate.node_limit)
        scores[candidate.worker_id] = {"BinPacking": score}
        total_scores[candidate.worker_id] = round(score, 4)
        ready_at = candidate.expected_ready_at
        ready_keys[candidate.worker_id] = ready_at.timestamp() if ready_at else float("-inf")
    if len(set(worker_ids)) != len(worker_ids):
        raise ValueError("candidates must have distinct worker ids")
    ranking = sorted(total_scores, key=lambda w: (-total_scores[w], ready_keys[w], w))
    chosen = ranking[0] if ranking else None
    return PlacementDecision(
        instance_id=request.instance_id,
        chosen_worker_id=chosen,
        candidates=worker_ids,
        rejections=rejections,
        scores=scores,
        total_scores=total_scores,
        policy=policy_name,
        policy_version=policy_version,
        outcome=PLACED if chosen else UNPLACEABLE,
        ranking=ranking,
        needed=None if chosen else needed_for(request, rejections),
    )


def _grid_peak(reservations: list[Reservation], start: datetime, end: datetime) -> tuple[Resources, int]:
    """Per-field maximum of the summed usage over each one-minute step of [start, end)."""
    best = [0.0, 0.0, 0.0, 0.0]
    t = start
    while t < end:
        step_end = min(t + STEP, end)
        usage = [0.0, 0.0, 0.0, 0.0]
        for r in reservations:
            if r.hold_start < step_end and t < r.hold_end:
                usage[0] += r.resources.cpu_cores
                usage[1] += r.resources.memory_gb
                usage[2] += r.resources.storage_gb
                usage[3] += r.nodes
        best = [max(b, u) for b, u in zip(best, usage, strict=True)]
        t = step_end
    return Resources(best[0], best[1], best[2]), int(round(best[3]))


def _license(request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
    if request.license_affinity and candidate.license_type not in request.license_affinity:
        return f"license {candidate.license_type} not in affinity"
    return None


def _state(request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
    if candidate.state == RUNNING:
        return None
    if candidate.state in BECOMING_READY_STATES:
        ready_at = candidate.expected_ready_at
        if ready_at is not None and ready_at <= request.ready_by:
            return None
        return f"worker is {candidate.state}, not ready in time"
    return f"worker is {candidate.state}"


def _image(request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
    if request.nested_virt and not candidate.nested_virt:
        return "no nested virtualisation"
    if request.ami_name_pattern and not fnmatchcase(candidate.ami_name, request.ami_name_pattern):
        return "AMI name does not match"
    if request.ami_min_version and version_key(candidate.ami_version) < version_key(request.ami_min_version):
        return "AMI version too old"
    return None


def _nodes(request: PlacementRequest, candidate: WorkerCandidate, peak_nodes: int) -> str | None:
    if peak_nodes + request.node_count > candidate.node_limit:
        return "not enough nodes over the window"
    return None


def _resources(request: PlacementRequest, candidate: WorkerCandidate, peak: Resources) -> str | None:
    capacity = candidate.ledger.capacity
    wanted = request.requirements
    for field in ("cpu_cores", "memory_gb", "storage_gb"):
        if getattr(peak, field) + getattr(wanted, field) > getattr(capacity, field) + TOLERANCE:
            return f"not enough {field} over the window"
    return None


def _ports(request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
    low, high = candidate.ledger.port_range
    used = {
        port
        for r in candidate.ledger.reservations()
        if r.hold_start < request.hold_end and request.hold_start < r.hold_end
        for port in r.ports.values()
        if low <= port <= high
    }
    if high - low + 1 - len(used) < len(request.port_names):
        return "not enough free ports over the window"
    return None
