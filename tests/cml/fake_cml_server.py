"""A local, CML-shaped HTTP server for testing the REST client over real HTTP.

Paths, payloads and error bodies follow /work/shared/notes/cml-api.md: JWT from
``POST authenticate`` (a bare JSON string), Bearer auth with 401 for unknown or expired
tokens, ``{"code", "description"}`` errors with CML's ``Lab not found: <id>`` wording,
asynchronous start/stop/wipe that converge after ``transition_seconds`` per node, and the
stop → wipe → delete rules (via the shared ``LabMachine``).

Faults are injected per request, optionally only for paths containing a substring:
``fail_next`` (answer N times with a status such as 500/502/503/429), ``slow_next`` (delay
N responses), ``drop_next`` (close the connection mid-response, N times) and ``lose_next``
(process the request, then drop the connection, so the client cannot know it succeeded). Every request
is logged in ``requests`` so tests can count retries.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from adapters.cml.lab_machine import LabMachine, LabRefused
from adapters.cml.topology import TopologyInvalid, parse_topology
from processors.ports.cml import LabStatus, NodeState

API = "/api/v0"


@dataclass
class Fault:
    kind: str  # "status" | "slow" | "drop" | "lose"
    remaining: int
    path_contains: str = ""
    status: int = 500
    seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class FakeCml:
    username: str = "admin"
    password: str = "secret"
    transition_seconds: float = 0.02
    config_as_string: bool = False  # older controllers return configuration as a plain string
    node_objects_have_state: bool = True  # if False, clients must read lab_element_state
    tokens: set[str] = field(default_factory=set)
    labs: dict[str, LabMachine] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.labs.clear()
            self.created.clear()
            self.faults.clear()
            self.requests.clear()
            self.transition_seconds = 0.02
            self.config_as_string = False
            self.node_objects_have_state = True

    # -- test controls ----------------------------------------------------------------------

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

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

    def _add(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.path_contains in path:
                    fault.remaining -= 1
                    return fault
        return None

    # -- lab helpers --------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def lab(self, lab_id: str) -> LabMachine:
        lab = self.labs.get(lab_id)
        if lab is None:
            raise CmlHttpError(404, f"Lab not found: {lab_id}")
        return lab


class CmlHttpError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def cml_error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"code": status, "description": description}, status_code=status)


def build_app(fake: FakeCml) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(CmlHttpError)
    async def _cml_error(request: Request, error: CmlHttpError) -> JSONResponse:
        return cml_error(error.status, error.description)

    @app.middleware("http")
    async def _authorize(request: Request, call_next: Any) -> Response:
        path = request.url.path
        open_paths = (f"{API}/system_information", f"{API}/authenticate")
        if path.startswith(API) and path not in open_paths:
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip()
            with fake.lock:
                known = token in fake.tokens
            if not known:
                return cml_error(401, "No authorization token provided or token expired.")
        return await call_next(request)

    @app.get(f"{API}/system_information")
    async def system_information() -> dict[str, Any]:
        return {"version": "2.10.0+build.1", "ready": True, "allow_ssh_pubkey_auth": False,
                "oui": "52:54:00:00:00:00", "timeout": 0, "features": []}

    @app.post(f"{API}/authenticate")
    async def authenticate(request: Request) -> Any:
        body = await request.json()
        if body.get("username") != fake.username or body.get("password") != fake.password:
            return cml_error(403, "Authentication failed!")
        token = secrets.token_urlsafe(24)
        with fake.lock:
            fake.tokens.add(token)
        return token

    @app.get(f"{API}/authentication")
    async def authentication() -> dict[str, Any]:
        return {"id": "00000000-0000-4000-8000-000000000001", "username": fake.username, "admin": True}

    @app.get(f"{API}/labs")
    async def labs(show_all: bool = False) -> list[str]:
        return list(fake.labs)

    @app.get(f"{API}/populate_lab_tiles")
    async def populate_lab_tiles() -> dict[str, Any]:
        return {"lab_tiles": {lab_id: _lab_object(fake, lab) for lab_id, lab in fake.labs.items()}}

    @app.post(f"{API}/import")
    async def import_lab(request: Request, title: str | None = None) -> dict[str, Any]:
        text = (await request.body()).decode()
        try:
            topology = parse_topology(text, title=title)
        except TopologyInvalid as error:
            raise CmlHttpError(400, str(error)) from error
        lab_id = str(uuid.uuid4())
        node_ids = [str(uuid.uuid4()) for _ in topology.nodes]
        fake.labs[lab_id] = LabMachine.imported(lab_id, topology, node_ids, fake.now())
        fake.created[lab_id] = datetime.now(UTC).isoformat()
        return {"id": lab_id, "warnings": None}

    @app.get(f"{API}/labs/{{lab_id}}")
    async def get_lab(lab_id: str) -> dict[str, Any]:
        return _lab_object(fake, fake.lab(lab_id))

    @app.delete(f"{API}/labs/{{lab_id}}", status_code=204)
    async def delete_lab(lab_id: str) -> Response:
        lab = fake.lab(lab_id)
        try:
            lab.check_deletable(fake.now())
        except LabRefused as refusal:
            raise CmlHttpError(400, refusal.description) from refusal
        del fake.labs[lab_id]
        return Response(status_code=204)

    @app.get(f"{API}/labs/{{lab_id}}/state")
    async def lab_state(lab_id: str) -> str:
        return str(fake.lab(lab_id).status(fake.now()))

    @app.get(f"{API}/labs/{{lab_id}}/check_if_converged")
    async def check_if_converged(lab_id: str) -> bool:
        return fake.lab(lab_id).converged(fake.now())

    @app.get(f"{API}/labs/{{lab_id}}/lab_element_state")
    async def lab_element_state(lab_id: str) -> dict[str, Any]:
        lab = fake.lab(lab_id)
        lab.advance(fake.now())
        return {
            "nodes": {node_id: str(node.state) for node_id, node in lab.nodes.items()},
            "links": {link.local_id: _link_state(lab, link.n1, link.n2) for link in lab.topology.links},
            "interfaces": {
                f"{node_id}:{interface.local_id}": _element_state(node.state)
                for node_id, node in lab.nodes.items()
                for interface in node.spec.interfaces
            },
        }

    @app.get(f"{API}/labs/{{lab_id}}/topology")
    async def topology(lab_id: str, exclude_configurations: bool = False) -> dict[str, Any]:
        lab = fake.lab(lab_id)
        return {
            "lab": {"title": lab.title, "description": "", "notes": "", "version": "0.3.1"},
            "nodes": [_node_object(fake, lab, node_id, not exclude_configurations) for node_id in lab.nodes],
            "links": [{"id": link.local_id, "label": link.local_id} for link in lab.topology.links],
            "annotations": [],
            "smart_annotations": [],
        }

    for action in ("start", "stop", "wipe"):
        app.put(f"{API}/labs/{{lab_id}}/{action}", status_code=204)(_lab_action(fake, action))

    @app.get(f"{API}/labs/{{lab_id}}/nodes")
    async def nodes(lab_id: str, data: bool = False, exclude_configurations: bool = False) -> list[Any]:
        lab = fake.lab(lab_id)
        if not data:
            return list(lab.nodes)
        return [_node_object(fake, lab, node_id, not exclude_configurations) for node_id in lab.nodes]

    @app.get(f"{API}/labs/{{lab_id}}/nodes/{{node_id}}")
    async def node(lab_id: str, node_id: str, exclude_configurations: bool = True) -> dict[str, Any]:
        lab = fake.lab(lab_id)
        _node_or_404(lab, node_id)
        return _node_object(fake, lab, node_id, not exclude_configurations)

    @app.put(f"{API}/labs/{{lab_id}}/nodes/{{node_id}}/extract_configuration")
    async def extract_configuration(lab_id: str, node_id: str) -> str:
        lab = fake.lab(lab_id)
        _node_or_404(lab, node_id)
        try:
            lab.extract_configuration(node_id, fake.now())
        except LabRefused as refusal:
            raise CmlHttpError(400, refusal.description) from refusal
        return "Configuration extracted"

    return FaultInjection(app, fake)  # type: ignore[return-value]


def _lab_action(fake: FakeCml, action: str) -> Any:
    async def handler(lab_id: str) -> Response:
        lab = fake.lab(lab_id)
        step = fake.transition_seconds
        try:
            if action == "start":
                lab.start(fake.now(), step)
            elif action == "stop":
                lab.stop(fake.now(), step)
            else:
                lab.wipe(fake.now(), step)
        except LabRefused as refusal:
            raise CmlHttpError(400, refusal.description) from refusal
        return Response(status_code=204)

    handler.__name__ = f"{action}_lab"
    return handler


def _lab_object(fake: FakeCml, lab: LabMachine) -> dict[str, Any]:
    return {
        "id": lab.lab_id,
        "created": fake.created.get(lab.lab_id, ""),
        "modified": fake.created.get(lab.lab_id, ""),
        "lab_title": lab.title,
        "lab_description": "",
        "lab_notes": "",
        "owner": "00000000-0000-4000-8000-000000000001",
        "owner_username": fake.username,
        "state": str(lab.status(fake.now())),
        "node_count": len(lab.nodes),
        "link_count": len(lab.topology.links),
        "groups": [],
        "effective_permissions": ["lab_admin"],
    }


def _node_object(fake: FakeCml, lab: LabMachine, node_id: str, with_configuration: bool) -> dict[str, Any]:
    node = lab.nodes[node_id]
    node.advance(fake.now())
    body: dict[str, Any] = {
        "id": node_id,
        "label": node.spec.label,
        "x": 0,
        "y": 0,
        "node_definition": node.spec.node_definition,
        "lab_id": lab.lab_id,
        "boot_progress": {NodeState.BOOTED: "Booted", NodeState.STARTED: "Booting"}.get(node.state, "Not running"),
    }
    if fake.node_objects_have_state:
        body["state"] = str(node.state)
    if with_configuration:
        if fake.config_as_string:
            body["configuration"] = node.configuration
        else:
            body["configuration"] = [{"name": "Main", "content": node.configuration}] if node.configuration else []
    return body


def _node_or_404(lab: LabMachine, node_id: str) -> None:
    if node_id not in lab.nodes:
        raise CmlHttpError(404, f"Node not found: {node_id}")


def _element_state(state: NodeState) -> str:
    if state in (NodeState.QUEUED, NodeState.STARTED, NodeState.BOOTED):
        return str(LabStatus.STARTED)
    if state is NodeState.DEFINED_ON_CORE:
        return str(LabStatus.DEFINED_ON_CORE)
    return str(LabStatus.STOPPED)


def _link_state(lab: LabMachine, n1: str, n2: str) -> str:
    by_local = {node.spec.local_id: node for node in lab.nodes.values()}
    states = {_element_state(by_local[n1].state), _element_state(by_local[n2].state)}
    for state in (LabStatus.DEFINED_ON_CORE, LabStatus.STOPPED):
        if str(state) in states:
            return str(state)
    return str(LabStatus.STARTED)


class FaultInjection:
    """ASGI wrapper that logs each request and applies the next matching fault."""

    def __init__(self, app: FastAPI, fake: FakeCml) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        with self.fake.lock:
            self.fake.requests.append((scope["method"], path))
        fault = self.fake.take_fault(path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            response = cml_error(fault.status, f"Injected fault {fault.status}")
            if headers:
                response.headers.update(headers)
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


class RunningFakeCml:
    """The fake served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, fake: FakeCml | None = None) -> None:
        self.fake = fake or FakeCml()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(build_app(self.fake), log_level="critical", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> RunningFakeCml:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake CML server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
