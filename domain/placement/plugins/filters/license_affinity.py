"""LicenseAffinity: the worker's CML license type must be one the lablet accepts."""

from __future__ import annotations

from functools import lru_cache

from domain.placement.candidate import WorkerCandidate
from domain.placement.plugins import Split
from domain.placement.request import PlacementRequest


class LicenseAffinity:
    """Passes when the affinity is empty (any license) or holds the worker's license type."""

    name = "LicenseAffinity"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        affinity = request.license_affinity
        if not affinity or candidate.license_type in affinity:
            return None
        return _reason(candidate.license_type, affinity)

    def filter_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
        affinity = request.license_affinity
        if not affinity:
            return list(candidates), []
        passed = [c for c in candidates if c.license_type in affinity]
        if len(passed) == len(candidates):
            return passed, []
        rejected = [(c.worker_id, _reason(c.license_type, affinity)) for c in candidates if c.license_type not in affinity]
        return passed, rejected

@lru_cache(maxsize=256)
def _reason(license_type: str, affinity: frozenset[str]) -> str:
    # Most rejections of one decision share the same text: format it once.
    return f"license {license_type} not in affinity [{', '.join(sorted(affinity))}]"
