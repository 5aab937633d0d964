"""A synchronous facade over any async ``ArtifactStore``, for code that is not async.

FastAPI runs ``def`` endpoints in a thread pool; the CLI is synchronous. Both can call
``BlockingArtifactStore`` from any thread. It owns one event loop in a daemon thread and
runs every call there, so an aiobotocore client (bound to the loop that opened it) is
always used from its own loop. Calling it from inside that loop would deadlock and raises.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from processors.ports.artifacts import ArtifactStore

T = TypeVar("T")


class BlockingArtifactStore:
    def __init__(self, store: ArtifactStore, *, timeout_seconds: float = 60.0) -> None:
        self.store = store
        self.timeout_seconds = timeout_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        return self._call(self.store.put(key, data, content_type))

    def get(self, uri_or_key: str) -> bytes:
        return self._call(self.store.get(uri_or_key))

    def exists(self, uri_or_key: str) -> bool:
        return self._call(self.store.exists(uri_or_key))

    def delete(self, uri_or_key: str) -> None:
        self._call(self.store.delete(uri_or_key))

    def put_lab_yaml(self, definition_name: str, sha256: str, text: str) -> str:
        return self._call(self.store.put_lab_yaml(definition_name, sha256, text))

    def uri_for(self, key: str) -> str:
        return self.store.uri_for(key)

    def close(self) -> None:
        """Close the store (if it has ``aclose``) on its loop, then stop the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        aclose = getattr(self.store, "aclose", None)
        try:
            if aclose is not None:
                asyncio.run_coroutine_threadsafe(aclose(), loop).result(self.timeout_seconds)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout_seconds)
            loop.close()

    def __enter__(self) -> BlockingArtifactStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "BlockingArtifactStore called from its own event loop; await the store instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result(self.timeout_seconds)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="artifact-store-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop
