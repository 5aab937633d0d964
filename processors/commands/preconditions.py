"""Conditional edits: a command carries the stream version its caller read (``If-Match``)."""

from __future__ import annotations

from typing import Any

from domain.errors import DomainError

ANY_VERSION = -1  # ``If-Match: *``: any existing version


class PreconditionFailed(DomainError):
    """The caller edits a version that is no longer the current one (412)."""

    status = 412
    title = "Precondition failed"


def require_version(aggregate: Any, expected: int | None, what: str) -> None:
    """Refuse the edit when ``expected`` (a read version) is not ``aggregate``'s version."""
    if expected is None:
        return
    if aggregate is None:
        raise PreconditionFailed(f"{what} does not exist (If-Match names a version of it)")
    if expected != ANY_VERSION and aggregate.version != expected:
        raise PreconditionFailed(f"{what} is at version {aggregate.version}, the edit was made on version "
                                 f"{expected}: read it again (another admin changed it) and redo the edit")
