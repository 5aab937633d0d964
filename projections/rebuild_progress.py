"""How far a shadow rebuild is, how fast it goes, and when it should be done (for /readyz)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class RebuildProgress:
    started_at: float  # time.monotonic() when it started (or resumed)
    started_position: int
    position: int = 0

    def report(self, head: int) -> dict[str, float | int | None]:
        elapsed = max(time.monotonic() - self.started_at, 1e-6)
        rate = (self.position - self.started_position) / elapsed
        remaining = max(0, head - self.position)
        return {"position": self.position, "head": head, "remaining": remaining,
                "events_per_s": round(rate, 1), "eta_seconds": round(remaining / rate, 1) if rate > 0 else None}
