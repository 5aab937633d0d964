"""A fleet snapshot grouped for fast placement of many requests.

Most workers of a large fleet fail a request on license type alone; grouping them once
lets the pipeline reject a whole group with one shared record instead of running a
filter per worker. Build one index per fleet snapshot and reuse it across decisions
while the fleet's states and templates do not change (ledgers may: they are read live).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.placement.candidate import WorkerCandidate


class CandidateIndex:
    def __init__(self, candidates: Iterable[WorkerCandidate]) -> None:
        self.candidates: tuple[WorkerCandidate, ...] = tuple(candidates)
        self.worker_ids: tuple[str, ...] = tuple(c.worker_id for c in self.candidates)
        self.by_license: dict[str, list[WorkerCandidate]] = {}
        for candidate in self.candidates:
            self.by_license.setdefault(candidate.license_type, []).append(candidate)
        self.ids_by_license: dict[str, tuple[str, ...]] = {
            license_type: tuple(c.worker_id for c in group) for license_type, group in self.by_license.items()
        }
        self._position = {worker_id: n for n, worker_id in enumerate(self.worker_ids)}

    def __len__(self) -> int:
        return len(self.candidates)

    def with_licenses(self, license_types: Iterable[str]) -> list[WorkerCandidate]:
        """The candidates of the given license types, in the index's order."""
        groups = [self.by_license[t] for t in license_types if t in self.by_license]
        if len(groups) == 1:
            return list(groups[0])
        merged = [candidate for group in groups for candidate in group]
        merged.sort(key=lambda c: self._position[c.worker_id])
        return merged
