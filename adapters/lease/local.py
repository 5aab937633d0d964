"""The lease for single-process deployments: always granted.

SQLite and the in-memory store are used by one process (the embedded ``all`` role), so
there is no other replica to exclude.
"""

from __future__ import annotations


class LocalLease:
    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False

    def try_acquire(self) -> bool:
        self.held = True
        return True

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.held = False
