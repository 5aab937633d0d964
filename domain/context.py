"""Who and what caused a command: recorded in the metadata of every event it produces."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import uuid4


@dataclass(frozen=True)
class CommandContext:
    """Time and provenance of one command.

    The domain never reads a clock: ``at`` is passed in (wall clock in production,
    a virtual clock in simulation) and becomes the events' ``occurred_at``.
    """

    at: datetime
    actor: str = "system"
    causation_id: str = field(default_factory=lambda: str(uuid4()))
    correlation_id: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("CommandContext.at must be timezone-aware")
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.causation_id)

    def metadata(self) -> dict[str, str]:
        return {
            "actor": self.actor,
            "causation_id": self.causation_id,
            "correlation_id": self.correlation_id,
        }

    def caused_by(self, causation_id: str, *, at: datetime | None = None) -> CommandContext:
        """A follow-up command in the same correlation (e.g. a processor reacting to an event)."""
        return replace(self, causation_id=causation_id, at=at or self.at)
