"""The part of ``esdbclient.EventStoreDBClient`` the recorders rely on, and how to get one.

``esdb://…`` / ``esdb+discover://…`` URIs connect to a real server (TLS options such as
``tlsCaFile`` travel in the URI); ``fake://<name>`` selects a named in-process fake
(tests, simulations), see ``fake_client``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from esdbclient import EventStoreDBClient, NewEvent, RecordedEvent, StreamState

from adapters.eventstore.esdb.fake_client import FAKE_SCHEME, fake_client_for


class EsdbClient(Protocol):
    def append_to_stream(
        self, /, stream_name: str, *, current_version: int | StreamState,
        events: NewEvent | Iterable[NewEvent], **kwargs: Any,
    ) -> int: ...

    def read_stream(self, stream_name: str, **kwargs: Any) -> Any: ...

    def get_stream(self, stream_name: str, **kwargs: Any) -> Sequence[RecordedEvent]: ...

    def get_current_version(self, stream_name: str, **kwargs: Any) -> int | StreamState: ...

    def read_all(self, **kwargs: Any) -> Any: ...

    def get_commit_position(self, **kwargs: Any) -> int: ...

    def subscribe_to_all(self, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


def connect(uri: str) -> EsdbClient:
    """A client for ``uri`` (a real server, or ``fake://<name>``)."""
    if uri.startswith(FAKE_SCHEME):
        return fake_client_for(uri)
    return EventStoreDBClient(uri)  # type: ignore[return-value]
