"""Which queued requests are worth deciding again: only those a change could fit.

A request that found no room stays unplaceable while it asks the same (same window) and
no worker that could take it changed: the policy is a pure function of the request and
the candidates, and a worker that only *gained* holds since (``CapacityReserved``) takes
no more than before — every filter is monotone in the holds. So the scheduler notes, per
failed request, the request and how far the log of *room changes* had got; a room change
is any worker event but a reservation (a released hold, a worker added,
ready, restarted, stopped, drain cancelled, a reload after a failed command). The request
is decided again only when it changed (time moved its window) or one of the workers
changed since can take it *now* by the policy's own filters on that worker alone; else
a fresh whole-fleet decision would say "nothing fits" again, so it is not made.

A template edit changes many workers at once: ``everything_changed`` retries them all.
The check is only a filter in front of the scheduler's own trigger (the capacity epoch):
it never makes a request tried sooner than before, only skips tries that cannot place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from domain.placement import PlacementRequest

#: room changes kept; past this the log is dropped and every failed request is retried once
MAX_LOG = 100_000


@dataclass
class _Failure:
    request: PlacementRequest
    generation: int
    checked: int  # room changes up to this position could not take the request


class RetryFilter:
    def __init__(self) -> None:
        self._log: list[str] = []  # worker ids, in the order their room changed
        self._generation = 0  # bumped when everything changed (and the log restarts)
        self._failures: dict[str, _Failure] = {}

    @property
    def position(self) -> int:
        return len(self._log)

    def room_changed(self, worker_id: str) -> None:
        """A worker may have more room (or be new) since: requests it could take are retried."""
        self._log.append(worker_id)
        if len(self._log) > MAX_LOG:
            self.everything_changed()

    def everything_changed(self) -> None:
        self._generation += 1
        self._log.clear()

    def failed(self, instance_id: str, request: PlacementRequest | None, position: int) -> None:
        """``request`` found no room with the room changes up to ``position`` seen."""
        if request is None:
            self._failures.pop(instance_id, None)
        else:
            self._failures[instance_id] = _Failure(request, self._generation, position)

    def forget(self, instance_id: str) -> None:
        self._failures.pop(instance_id, None)

    def may_fit(
        self, instance_id: str, request: PlacementRequest | None, takes: Callable[[str, PlacementRequest], bool]
    ) -> bool:
        """Whether deciding ``request`` again can place it; ``takes(worker_id, request)``: the
        policy's filters pass on that worker alone, now (False for a worker that is gone)."""
        failure = self._failures.get(instance_id)
        if failure is None or request is None or failure.generation != self._generation:
            return True
        if failure.request != request:
            return True
        log = self._log
        seen: set[str] = set()
        for position in range(failure.checked, len(log)):
            worker_id = log[position]
            if worker_id not in seen:
                seen.add(worker_id)
                if takes(worker_id, request):
                    return True
        failure.checked = len(log)  # none of those can take it: never look at them again for it
        return False
