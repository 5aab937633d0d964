"""NestedVirtAndAmi: the worker's machine image must support what the lab needs."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import lru_cache

from domain.placement.candidate import WorkerCandidate
from domain.placement.plugins import Split, split_one_by_one
from domain.placement.request import PlacementRequest


class NestedVirtAndAmi:
    """Nested virtualisation when required; AMI name matching the glob
    ``ami_name_pattern`` (case-sensitive); AMI version at least ``ami_min_version``."""

    name = "NestedVirtAndAmi"

    def filter(self, request: PlacementRequest, candidate: WorkerCandidate) -> str | None:
        if request.nested_virt and not candidate.nested_virt:
            return "nested virtualisation required, worker has none"
        pattern = request.ami_name_pattern
        if pattern and not _matches(candidate.ami_name, pattern):
            return f"AMI {candidate.ami_name} does not match {pattern}"
        minimum = request.ami_min_version
        if minimum and version_key(candidate.ami_version) < version_key(minimum):
            return f"AMI version {candidate.ami_version} below minimum {minimum}"
        return None

    def filter_many(self, request: PlacementRequest, candidates: list[WorkerCandidate]) -> Split:
        if not (request.nested_virt or request.ami_name_pattern or request.ami_min_version):
            return list(candidates), []
        return split_one_by_one(self, request, candidates)

_NUMBERS = re.compile(r"\d+")


@lru_cache(maxsize=1024)
def _matches(name: str, pattern: str) -> bool:
    # A fleet has few distinct AMI names and lablets few patterns: match each pair once.
    return fnmatchcase(name, pattern)


@lru_cache(maxsize=1024)
def version_key(version: str) -> tuple[int, ...]:
    """Numeric key of a CML/AMI version: ``"2.9"`` == ``"2.9.0"`` < ``"2.10.1"``.

    Only the digit runs count (``"v2.9.1-build3"`` -> 2, 9, 1, 3), and trailing zeros
    are dropped so missing parts compare as zero. An empty version is the lowest.
    """
    parts = [int(number) for number in _NUMBERS.findall(version or "")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
