"""One in-process moto server per test session; its state is wiped after every test.

The adapters talk to it over HTTP exactly as they would to AWS (no patching of botocore).
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator

import pytest
from aiobotocore.session import AioSession, get_session

# Read by moto when a region's backend is created: skip loading ~1300 stock AMIs (saves
# 1-2 s per region); the tests register the images they need.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from moto.server import ThreadedMotoServer  # noqa: E402 - after the environment is set

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset_moto(moto_endpoint: str) -> Iterator[None]:
    yield
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def aio_session() -> AioSession:
    """One botocore session for the run: it caches the parsed service models (~0.5 s each)."""
    return get_session()
