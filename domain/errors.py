"""Errors the domain raises; the API maps each to an RFC 9457 problem."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a command was refused; nothing was recorded."""

    status = 422
    title = "Unprocessable command"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """A field of a command failed validation."""

    status = 422
    title = "Invalid input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class IllegalTransition(DomainError):
    """The aggregate's current state does not allow the command."""

    status = 409
    title = "Illegal state transition"

    def __init__(self, aggregate: str, state: str, action: str) -> None:
        super().__init__(f"{aggregate} in state {state} cannot {action}")
        self.aggregate = aggregate
        self.state = state
        self.action = action


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    """The command contradicts existing state (e.g. deleting a template in use)."""

    status = 409
    title = "Conflict"


class ConcurrencyConflict(Conflict):
    """Another writer appended to the same stream first (optimistic concurrency).

    Raised by the event store wiring when a save hits a stale expected version;
    callers re-read the aggregate and retry the command.
    """

    title = "Concurrent modification"


class InsufficientCapacity(Conflict):
    """A reservation does not fit a worker's ledger over its window."""

    title = "Insufficient capacity"
