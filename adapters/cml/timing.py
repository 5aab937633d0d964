"""The clock and sleep the CML clients are given (real in production, virtual in tests).

``Clock`` reads monotonic seconds; ``Sleep`` waits that many seconds in the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
