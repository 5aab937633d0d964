"""One background (daemon) thread that runs until asked to stop.

The projection runner, the process-manager followers and loops and the lease guard all
own a thread the same way: ``start`` is harmless when it already runs, ``stop`` sets the
``stopping`` event the thread's loop watches, wakes it if it blocks elsewhere, and joins.
It lives in ``projections`` (the lowest layer with threads) so every layer above can use it;
adapters reach it through ``processors.daemon``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class DaemonThread:
    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self._target = target
        # Set by stop(); the target's loop checks it (or waits on it instead of sleeping).
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self.stopping.clear()
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float, *, wake: Callable[[], None] | None = None) -> None:
        """Ask the thread to stop, ``wake`` it (e.g. end a blocking read), wait ``timeout``."""
        self.stopping.set()
        if wake is not None:
            wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
