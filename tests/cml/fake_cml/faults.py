"""Injected faults and the request log, as an ASGI wrapper around the fake's app.

``fail_next`` answers N requests with a status (500/502/503/429, optionally ``Retry-After``),
``slow_next`` delays N responses, ``drop_next`` closes the connection mid-response and
``lose_next`` processes the request, then drops the connection, so the client cannot know that
it worked. Each may be limited to paths that contain a substring.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.cml.fake_cml.errors import cml_error


@dataclass
class Fault:
    kind: str  # "status" | "slow" | "drop" | "lose"
    remaining: int
    path_contains: str = ""
    status: int = 500
    seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.requests.clear()

    def fail_next(self, count: int, status: int, path_contains: str = "", retry_after: str | None = None) -> None:
        self._add(Fault("status", count, path_contains, status=status, retry_after=retry_after))

    def slow_next(self, count: int, seconds: float, path_contains: str = "") -> None:
        self._add(Fault("slow", count, path_contains, seconds=seconds))

    def drop_next(self, count: int, path_contains: str = "") -> None:
        self._add(Fault("drop", count, path_contains))

    def lose_next(self, count: int, path_contains: str = "") -> None:
        """Handle the request, then drop the connection before the answer: the change happened."""
        self._add(Fault("lose", count, path_contains))

    def calls(self, method: str, path_contains: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and path_contains in p)

    def log(self, method: str, path: str) -> None:
        with self.lock:
            self.requests.append((method, path))

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.path_contains in path:
                    fault.remaining -= 1
                    return fault
        return None

    def _add(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)


class FaultInjection:
    """ASGI wrapper that logs each request and applies the next matching fault."""

    def __init__(self, app: Any, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.plan.log(scope["method"], path)
        fault = self.plan.take_fault(path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            response = cml_error(fault.status, f"Injected fault {fault.status}")
            if fault.retry_after:
                response.headers["Retry-After"] = fault.retry_after
            await response(scope, receive, send)
        else:
            if fault.kind == "lose":
                await self.app(scope, receive, _swallow)
            # Promise a body, send a fragment, and let the server abort the connection.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]})
            await send({"type": "http.response.body", "body": b'{"partial', "more_body": True})
            raise ConnectionAbortedError("injected connection drop")


async def _swallow(message: Any) -> None:
    return None
