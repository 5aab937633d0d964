"""Rebuild every read model in the background, coalescing requests that arrive meanwhile.

Used after a person is forgotten: the log already reads them as erased, and a rebuild is
the one way every read model (whatever it derived from their identity) catches up with that.
Requests during a rebuild cause exactly one more rebuild after it, never one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundRebuild:
    def __init__(self, rebuild_all: Callable[[], object]) -> None:
        self._rebuild_all = rebuild_all
        self._lock = threading.Condition()
        self._due: float | None = None  # monotonic time the next rebuild may start
        self._thread: threading.Thread | None = None
        self.completed = 0

    def request(self, delay: float = 0.0) -> None:
        with self._lock:
            due = time.monotonic() + delay
            self._due = due if self._due is None else max(self._due, due)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="read-model-rebuild", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """True once no rebuild is due or running (tests and the CLI wait on this)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._thread is None, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._due is None:
                    self._thread = None
                    self._lock.notify_all()
                    return
                wait = self._due - time.monotonic()
                if wait <= 0:
                    self._due = None
            if wait > 0:
                time.sleep(min(wait, 0.5))
                continue
            try:
                self._rebuild_all()
            except Exception:  # a failed rebuild must not kill later ones; the runner reports lag
                log.exception("background read-model rebuild failed")
            with self._lock:
                self.completed += 1
