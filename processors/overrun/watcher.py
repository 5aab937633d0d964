"""Labs still active at the end of their hold get a longer hold, automatically.

SPEC §4: "If an instance is still active at the end of its hold, the hold is extended when
the worker has room; otherwise the *future* reservations that would collide are re-placed
— a live lab is never the one that moves." A lab overruns when collection, grading or
teardown take longer than the teardown margin, or when CML is slow to stop it.

Level-triggered like the other processors: each ``tick`` asks which active labs' holds end
within ``lookahead`` and extends each by ``step`` (``ExtensionService.overrun``: one atomic
save per lab, optimistic concurrency on every stream it touches). A crash between ticks
loses nothing: the next tick sees the same holds and does the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.context import CommandContext
from domain.errors import DomainError
from processors.commands.extension import Extended, ExtensionService
from processors.ports.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverrunSettings:
    #: a hold ending this soon is extended now (before the worker's next booking can start)
    lookahead: timedelta = timedelta(minutes=5)
    #: how much longer each time (the next tick extends again if the lab still runs)
    step: timedelta = timedelta(minutes=30)


class OverrunWatcher:
    def __init__(
        self,
        extensions: ExtensionService,
        due: Callable[[datetime], Iterable[str]],
        clock: Clock,
        settings: OverrunSettings | None = None,
    ) -> None:
        """``due(horizon)``: ids of active labs whose hold ends before ``horizon``."""
        self.extensions = extensions
        self.due = due
        self.clock = clock
        self.settings = settings or OverrunSettings()

    def tick(self, now: datetime | None = None) -> list[Extended]:
        now = now or self.clock.now()
        done: list[Extended] = []
        for instance_id in sorted(set(self.due(now + self.settings.lookahead))):
            ctx = CommandContext(at=now, actor="system:overrun", causation_id=f"overrun:{instance_id}")
            try:
                extended = self.extensions.overrun(instance_id, self.settings.step, ctx)
            except DomainError as error:  # logged; the next tick tries again from fresh state
                log.warning("overrun: %s not extended: %s", instance_id, error)
                continue
            if extended is not None:
                log.info("overrun: %s hold now ends %s (moved %s, requeued %s)", instance_id,
                         extended.hold_end, list(extended.moved), list(extended.requeued))
                done.append(extended)
        return done
