"""Port: the per-person encryption keys behind personal data in events (crypto-shredding)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PersonKey:
    """A person's pseudonymous ``subject_id`` (what events name) and their AES key."""

    subject_id: str
    key: bytes


class PersonKeys(Protocol):
    """Where keys live: beside the events (same database), never inside them.

    People are looked up by a hash of their identity, so the table itself names nobody in
    clear; forgetting deletes the row, after which nothing links a ``subject_id`` to anyone.
    """

    # How long another process may still use a key it read before it was forgotten here.
    cache_seconds: float

    def key_for(self, person: str) -> PersonKey:
        """The person's key, created on first use (racing creators agree on one)."""
        ...

    def key_of(self, subject_id: str) -> bytes | None:
        """The key behind ``subject_id``; ``None`` once the person was forgotten."""
        ...

    def forget(self, person: str) -> str | None:
        """Destroy the person's key; the ``subject_id`` it had, or ``None`` if unknown."""
        ...
