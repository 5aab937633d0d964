"""A real HTTP receiver (uvicorn in a background thread) that records what it gets and
answers from a per-message plan: a status, ``("retry-after", status, value)``,
``("redirect", url)`` or ``"hang"`` (sleeps past the sender's timeout).

It answers the CloudEvents web hook handshake (``OPTIONS``) as ``handshake`` says:
``"grant"`` (echo the origin, rate ``*``), ``"refuse"`` (405, no grant headers) or a dict
of headers to answer with; the validation requests are kept in ``handshakes``.

The receiver listens on 127.0.0.1, so the apps of these tests allow that network
(``LOCAL_RECEIVERS``): the egress policy's admin allow-list, as a deployment would set it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: the receiver hung (the sender timed out)
    at: float  # time.monotonic()


class Receiver:
    HANG_SECONDS = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.base_url = ""

    def reset(self) -> None:
        with self.lock:
            self.requests: list[Received] = []
            self.plan: dict[str, deque] = defaultdict(deque)
            self.always: dict[str, object] = {}
            self.default: object = 200
            self.delay = 0.0  # seconds before answering (slows the sender down)
            self.gate: threading.Event | None = None  # when set: hold every request until it opens
            self.held = 0  # requests that reached the gate
            self.handshake: object = "grant"
            self.handshakes: list[Received] = []

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def respond(self, message_id: str, *answers: object) -> None:
        with self.lock:
            self.plan[message_id].extend(answers)

    def ok(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def wait_for(self, predicate, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.01)
        raise AssertionError("receiver: condition not reached in time")

    async def validate(self, request: Request) -> Response:
        with self.lock:
            plan = self.handshake
            record = Received(request.url.path, dict(request.headers), b"", None, time.monotonic())
            self.handshakes.append(record)
        if plan == "refuse":
            return Response(status_code=405, headers={"allow": "POST"})
        if isinstance(plan, dict):
            return Response(status_code=200, headers=plan)
        origin = request.headers.get("webhook-request-origin", "")
        return Response(status_code=200, headers={"webhook-allowed-origin": origin, "webhook-allowed-rate": "*",
                                                  "allow": "POST"})

    async def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return await self.validate(request)
        body = await request.body()
        gate = self.gate
        if gate is not None:
            with self.lock:
                self.held += 1
            await asyncio.to_thread(gate.wait, 30)
        if self.delay:
            await asyncio.sleep(self.delay)
        message_id = request.headers.get("webhook-id", "")
        with self.lock:
            queue = self.plan.get(message_id)
            answer = queue.popleft() if queue else self.always.get(message_id, self.default)
        status, headers = 200, {}
        if answer == "hang":
            record = Received(request.url.path, dict(request.headers), body, None, time.monotonic())
            with self.lock:
                self.requests.append(record)
            await asyncio.sleep(self.HANG_SECONDS)
            return Response(status_code=200)
        if isinstance(answer, tuple) and answer[0] == "retry-after":
            status, headers = answer[1], {"retry-after": answer[2]}
        elif isinstance(answer, tuple) and answer[0] == "redirect":
            status, headers = 307, {"location": answer[1]}
        else:
            status = int(answer)  # type: ignore[arg-type]
        with self.lock:
            self.requests.append(Received(request.url.path, dict(request.headers), body, status, time.monotonic()))
        return Response(status_code=status, headers=headers)


@pytest.fixture(scope="session")
def _receiver_server():
    receiver = Receiver()

    async def handler(request: Request) -> Response:
        return await receiver.handle(request)

    app = Starlette(routes=[Route("/{path:path}", handler, methods=["POST", "OPTIONS"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    host, port = sock.getsockname()
    receiver.base_url = f"http://{host}:{port}"
    yield receiver
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture
def receiver(_receiver_server):
    _receiver_server.reset()
    return _receiver_server
