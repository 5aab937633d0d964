"""Lease port: at most one active replica of a processor role at a time.

Correctness never depends on it (optimistic concurrency does that); the lease saves the
work of replicas racing each other, and keeps side effects that are not idempotent across
processes (two instance controllers importing the same lab on CML) on one replica.
"""

from __future__ import annotations

from typing import Protocol


class Lease(Protocol):
    """One named lease, held by this process or not.

    ``try_acquire`` never blocks for long; ``still_held`` is called periodically by the
    holder and answers False as soon as the lease may have passed to someone else (the
    holder must then stop acting). ``release`` is idempotent.
    """

    name: str

    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...
