"""What the instance controller is built with: the store, the artifact store, the way to
reach a worker's CML, and a checkpoint store in memory (tests, simulation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from processors.ports.cml import CmlEndpoint
from projections.events import StoredEvent


class ControllerStore(Protocol):
    """The event store calls used here (``adapters.eventstore.EventStore`` has them)."""

    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def read_stream(self, stream_id: str, after_version: int | None = None) -> list[StoredEvent]: ...

    def read_all(self, after: int = 0, limit: int = 1000, topics: Sequence[str] = ()) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...


class Artifacts(Protocol):
    """Synchronous artifact calls (``adapters.artifacts.blocking.BlockingArtifactStore``);
    the controller runs them in a thread so a slow S3 never blocks the loop."""

    def get(self, uri_or_key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...


EndpointFor = Callable[[str, str], CmlEndpoint]  # (worker id, worker ip) -> its CML controller


class MemoryCheckpoints:
    """A checkpoint store in memory (tests, simulation): shared by successive controllers
    to stand for the durable one."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    def load_checkpoint(self, name: str) -> int:
        return self.positions.get(name, 0)

    def save_checkpoint(self, name: str, position: int) -> None:
        self.positions[name] = position
