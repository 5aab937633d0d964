"""The synchronous facade, as FastAPI's thread-pool endpoints would use it."""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.artifacts.blocking import BlockingArtifactStore
from adapters.artifacts.local import LocalArtifactStore
from processors.ports.artifacts import ArtifactNotFound


@pytest.fixture
def blocking(tmp_path: Path):  # type: ignore[no-untyped-def]
    with BlockingArtifactStore(LocalArtifactStore(tmp_path)) as store:
        yield store


def test_round_trip_from_plain_threads(blocking: BlockingArtifactStore) -> None:
    def work(n: int) -> bytes:
        uri = blocking.put(f"t/{n}", str(n).encode())
        assert blocking.exists(uri)
        return blocking.get(uri)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(32))) == [str(n).encode() for n in range(32)]


def test_errors_cross_the_thread(blocking: BlockingArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        blocking.get("missing")
    blocking.delete("missing")


def test_lab_yaml(blocking: BlockingArtifactStore) -> None:
    text = "lab: {}\n"
    uri = blocking.put_lab_yaml("d", hashlib.sha256(text.encode()).hexdigest(), text)
    assert blocking.get(uri) == text.encode()


def test_usable_while_another_loop_runs(blocking: BlockingArtifactStore) -> None:
    async def inside_some_loop() -> bytes:
        blocking.put("k", b"v")
        return blocking.get("k")

    assert asyncio.run(inside_some_loop()) == b"v"


def test_calling_from_its_own_loop_is_refused(blocking: BlockingArtifactStore) -> None:
    blocking.put("k", b"v")
    loop = blocking._running_loop()

    async def reentrant() -> None:
        blocking.get("k")

    with pytest.raises(RuntimeError, match="own event loop"):
        asyncio.run_coroutine_threadsafe(reentrant(), loop).result(5)


def test_close_is_idempotent(tmp_path: Path) -> None:
    store = BlockingArtifactStore(LocalArtifactStore(tmp_path))
    store.put("k", b"v")
    store.close()
    store.close()
    assert store.get("k") == b"v"  # a closed facade starts a fresh loop when used again
    store.close()
