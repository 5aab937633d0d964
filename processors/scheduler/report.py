"""What one scheduler pass did."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class PassReport:
    """What one pass did (all zero: the world already matched the log)."""

    placed: int = 0
    failed: int = 0
    recovered: int = 0
    released: int = 0
    requeued: int = 0
    terminated: int = 0
    instantiated: int = 0
    conflicts: int = 0

    @property
    def acted(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name not in ("conflicts", "failed"))

    def add(self, other: PassReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
