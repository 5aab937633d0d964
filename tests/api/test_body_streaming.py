"""Issue 16: a chunked body with no Content-Length is cut off at the route's limit while it
streams in (413 problem+json), instead of being read whole first (30 MiB, +60 MB memory).

Over a raw socket to a real server (uvicorn): an HTTP client library would send the whole
body before reading the answer, and the in-process test client buffers it.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.edge.body_size import DEFAULT_LIMIT, limit_for
from tests.api.hostile_support import STORES, store_settings
from tests.api.test_instances_support import API, NOW, TOKENS, serve

BODY = 30 * 1024 * 1024  # what the attacker offered
CHUNK = 64 * 1024


@pytest.fixture(params=STORES)
def base_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_settings(request.param, tmp_path) as settings:
        with serve(create_app(Container(settings, clock=VirtualClock(NOW)))) as url:
            yield url


def send_chunked(base_url: str, method: str, path: str, token: str) -> tuple[bytes, int]:
    """Stream up to ``BODY`` bytes as chunks; stop when the server answers. (response, bytes sent)."""
    parts = urlsplit(base_url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
        try:
            while sent < BODY:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break  # the server has answered
                sock.sendall(chunk)
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering
        response = b""
        while b"\r\n\r\n" not in response or not _complete(response):
            data = sock.recv(65536)
            if not data:
                break
            response += data
    return response, sent


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


@pytest.mark.parametrize(("method", "path"), [("POST", f"{API}/instances"), ("PUT", f"{API}/worker-templates/big"),
                                              ("POST", f"{API}/definitions")])
def test_a_chunked_body_is_cut_off_at_the_limit_while_streaming(base_url: str, method: str, path: str) -> None:
    admin_token = TOKENS.split(",")[0].split(":")[1]
    response, sent = send_chunked(base_url, method, path, admin_token)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["status"] == 413 and problem["errors"][0]["reason"]
    # Refused long before the 30 MiB were offered (the rest is socket buffers, not the server).
    assert sent < BODY
    assert limit_for(path)[0] <= 3 * 1024 * 1024


def test_routes_without_a_larger_need_take_the_default_limit() -> None:
    assert limit_for(f"{API}/worker-templates/x") == (DEFAULT_LIMIT, "body")
    assert limit_for(f"{API}/definitions")[1] == "lab_yaml"
