"""An in-process fake of ``esdbclient.EventStoreDBClient``, with EventStoreDB semantics.

Only the calls our recorders make are implemented, and they behave as the server does:

- stream revisions count from 0; an append states the revision it expects
  (``StreamState.NO_STREAM``, ``ANY``, ``EXISTS`` or an int) and fails with
  ``WrongCurrentVersion`` otherwise;
- appending events whose ids are already at the expected place is a no-op that succeeds
  (the server's idempotent writes), so a retried append never duplicates events;
- every record gets a commit position in one global ``$all`` order; positions are byte
  offsets in a log, so they have large gaps, and the server writes its own ``$``-typed
  system events in between;
- reading ``$all`` from a position is inclusive and needs the position of a record (or 0);
  a catch-up subscription starts *after* its position and blocks for new events;
- filters are esdbclient's regexes over event types or stream names.

Several clients can share one ``FakeEventStoreDBServer`` (as processes share a server):
``fake_server(name)`` keeps named servers, and the URI ``fake://<name>`` selects one.
Hooks (``on_append``, ``lose_next_responses``) let tests inject concurrent writers and
lost responses.
"""

from __future__ import annotations

import bisect
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

from esdbclient import DEFAULT_EXCLUDE_FILTER, NewEvent, RecordedEvent, StreamState
from esdbclient.common import construct_filter_exclude_regex, construct_filter_include_regex
from esdbclient.exceptions import (
    ConsumerTooSlow,
    GrpcDeadlineExceeded,
    GrpcError,
    NotFound,
    ProgrammingError,
    WrongCurrentVersion,
)

FAKE_SCHEME = "fake://"
RECORD_OVERHEAD = 120  # bytes a log record takes besides its names and payloads
LOG_START = 128  # the first record follows a chunk header: no record is ever at 0
STATS_EVERY = 5  # appends between two of the server's own "$statsCollected" events


class InvalidCommitPosition(GrpcError):
    """Reading ``$all`` from a position that is not the position of a record."""


class FakeEventStoreDBServer:
    """One in-memory EventStoreDB node: streams, the ``$all`` log, live subscribers."""

    def __init__(self, *, system_events: bool = True) -> None:
        self._changed = threading.Condition()
        self._log: list[RecordedEvent] = []
        self._positions: list[int] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._next_position = LOG_START
        self._appends = 0
        self._system_events = system_events
        self._lost_responses = 0
        self.generation = 0  # bumped when the server drops its subscriptions
        self.on_append: Callable[[str], None] | None = None
        if system_events:  # what a fresh server already holds
            self._write_system("$projections-$all", "$ProjectionsInitialized")
            self._write_system("$persistentSubscriptionConfig", "PersistentConfig1")

    # -- fault injection (tests) ---------------------------------------------------------
    def lose_next_responses(self, count: int = 1) -> None:
        """The next ``count`` appends are committed, but their response is lost."""
        with self._changed:
            self._lost_responses += count

    def drop_subscriptions(self) -> None:
        """Abort every live subscription, as a restarting or overloaded server does."""
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    # -- writes ----------------------------------------------------------------------------
    def append(
        self, stream_name: str, current_version: int | StreamState, events: Sequence[NewEvent]
    ) -> int:
        if self.on_append is not None:
            self.on_append(stream_name)
        with self._changed:
            stream = self._streams.get(stream_name, [])
            replay = self._idempotent_replay(stream, current_version, events)
            if replay is not None:
                return replay
            _check_expected(stream_name, stream, current_version)
            position = 0
            for new in events:
                position = self._write(stream_name, new)
            self._appends += 1
            if self._system_events and self._appends % STATS_EVERY == 0:
                self._write_system("$stats-127.0.0.1:2113", "$statsCollected")
            self._changed.notify_all()
            if self._lost_responses:
                self._lost_responses -= 1
                raise GrpcDeadlineExceeded("fake: the append was committed, its response lost")
            return position

    def _idempotent_replay(
        self, stream: list[RecordedEvent], expected: int | StreamState, events: Sequence[NewEvent]
    ) -> int | None:
        """Commit position of an earlier identical append, if this one repeats it."""
        ids = [e.id for e in events]
        if not ids or not stream:
            return None
        if isinstance(expected, int):
            first = expected + 1
        elif expected is StreamState.NO_STREAM:
            first = 0
        else:  # ANY / EXISTS: the server remembers recent ids; the tail is close enough
            first = len(stream) - len(ids)
        if first < 0 or first + len(ids) > len(stream):
            return None
        already = stream[first:first + len(ids)]
        if [e.id for e in already] != ids:
            return None
        return already[-1].commit_position

    def _write(self, stream_name: str, new: NewEvent) -> int:
        stream = self._streams.setdefault(stream_name, [])
        position = self._next_position
        recorded = RecordedEvent(
            type=new.type, data=new.data, metadata=new.metadata,
            content_type=new.content_type, id=new.id, stream_name=stream_name,
            stream_position=len(stream), commit_position=position, prepare_position=position,
            recorded_at=datetime.now(timezone.utc),
        )
        stream.append(recorded)
        self._log.append(recorded)
        self._positions.append(position)
        size = len(stream_name) + len(new.type) + len(new.data) + len(new.metadata)
        self._next_position += RECORD_OVERHEAD + size
        return position

    def _write_system(self, stream_name: str, event_type: str) -> None:
        self._write(stream_name, NewEvent(type=event_type, data=b"{}", id=uuid4()))

    # -- reads -----------------------------------------------------------------------------
    def stream(self, stream_name: str) -> list[RecordedEvent]:
        with self._changed:
            if stream_name not in self._streams:
                raise NotFound(f"Stream {stream_name!r} not found")
            return list(self._streams[stream_name])

    def all_from(self, commit_position: int | None) -> list[RecordedEvent]:
        """The log from ``commit_position`` (inclusive)."""
        with self._changed:
            return self._log[self._index_of(commit_position):]

    def all_before(self, commit_position: int | None) -> list[RecordedEvent]:
        """The log before ``commit_position`` (exclusive), in log order."""
        with self._changed:
            if commit_position is None:
                return list(self._log)
            return self._log[:self._index_of(commit_position)]

    def _index_of(self, commit_position: int | None) -> int:
        if not commit_position:
            return 0
        index = bisect.bisect_left(self._positions, commit_position)
        if index == len(self._positions) or self._positions[index] != commit_position:
            raise InvalidCommitPosition(f"no record at commit position {commit_position}")
        return index

    def wait_after(
        self, index: int, stopped: threading.Event, generation: int
    ) -> RecordedEvent | None:
        """The record at ``index`` of the log, waiting for it; ``None`` once stopped."""
        with self._changed:
            while True:
                if stopped.is_set():
                    return None
                if generation != self.generation:
                    raise ConsumerTooSlow("fake: the server dropped the subscription")
                if index < len(self._log):
                    return self._log[index]
                self._changed.wait()

    def end_index(self) -> int:
        with self._changed:
            return len(self._log)

    def index_after(self, commit_position: int) -> int:
        with self._changed:
            return bisect.bisect_right(self._positions, commit_position)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()


class FakeReadResponse(Iterator[RecordedEvent]):
    """A finished read: iterable, stoppable and a context manager, like esdbclient's."""

    def __init__(self, events: Iterable[RecordedEvent]) -> None:
        self._events = iter(events)
        self._stopped = False

    def __next__(self) -> RecordedEvent:
        if self._stopped:
            raise StopIteration
        return next(self._events)

    def stop(self) -> None:
        self._stopped = True

    def __enter__(self) -> FakeReadResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeCatchupSubscription(Iterator[RecordedEvent]):
    """Events after a position, then new ones as they are recorded; ``stop()`` ends it."""

    def __init__(self, server: FakeEventStoreDBServer, index: int,
                 accept: Callable[[RecordedEvent], bool]) -> None:
        self._server = server
        self._index = index
        self._accept = accept
        self._stopped = threading.Event()
        self._generation = server.generation
        self.subscription_id = str(uuid4())

    def __next__(self) -> RecordedEvent:
        while True:
            event = self._server.wait_after(self._index, self._stopped, self._generation)
            if event is None:
                raise StopIteration
            self._index += 1
            if self._accept(event):
                return event

    def stop(self) -> None:
        self._stopped.set()
        self._server.wake()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __enter__(self) -> FakeCatchupSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeEventStoreDBClient:
    """The subset of ``esdbclient.EventStoreDBClient`` used by the recorders."""

    def __init__(self, server: FakeEventStoreDBServer) -> None:
        self.server = server
        self._is_closed = False
        self._subscriptions: list[FakeCatchupSubscription] = []

    @property
    def is_closed(self) -> bool:
        return self._is_closed

    def append_to_stream(
        self,
        /,
        stream_name: str,
        *,
        current_version: int | StreamState,
        events: NewEvent | Iterable[NewEvent],
        timeout: float | None = None,
        credentials: Any = None,
    ) -> int:
        self._check_open()
        batch = [events] if isinstance(events, NewEvent) else list(events)
        try:
            return self.server.append(stream_name, current_version, batch)
        except GrpcError:
            # esdbclient's @retrygrpc: one more attempt with the very same events
            return self.server.append(stream_name, current_version, batch)

    def read_stream(
        self,
        stream_name: str,
        *,
        stream_position: int | None = None,
        backwards: bool = False,
        resolve_links: bool = False,
        limit: int = sys.maxsize,
        timeout: float | None = None,
        credentials: Any = None,
    ) -> FakeReadResponse:
        self._check_open()
        events = self.server.stream(stream_name)
        if backwards:
            end = len(events) if stream_position is None else min(stream_position + 1, len(events))
            selected = list(reversed(events[:end]))
        else:
            selected = events[stream_position or 0:]
        return FakeReadResponse(selected[:limit])

    def get_stream(self, stream_name: str, **kwargs: Any) -> tuple[RecordedEvent, ...]:
        with self.read_stream(stream_name, **kwargs) as events:
            return tuple(events)

    def get_current_version(
        self, stream_name: str, *, timeout: float | None = None, credentials: Any = None
    ) -> int | StreamState:
        self._check_open()
        try:
            return len(self.server.stream(stream_name)) - 1
        except NotFound:
            return StreamState.NO_STREAM

    def read_all(
        self,
        *,
        commit_position: int | None = None,
        backwards: bool = False,
        resolve_links: bool = False,
        filter_exclude: Sequence[str] = DEFAULT_EXCLUDE_FILTER,
        filter_include: Sequence[str] = (),
        filter_by_stream_name: bool = False,
        limit: int = sys.maxsize,
        timeout: float | None = None,
        credentials: Any = None,
    ) -> FakeReadResponse:
        self._check_open()
        accept = _filter(filter_exclude, filter_include, filter_by_stream_name)
        if backwards:
            events: Iterable[RecordedEvent] = reversed(self.server.all_before(commit_position))
        else:
            events = self.server.all_from(commit_position)
        return FakeReadResponse(_take(filter(accept, events), limit))

    def get_commit_position(
        self,
        *,
        filter_exclude: Sequence[str] = DEFAULT_EXCLUDE_FILTER,
        filter_include: Sequence[str] = (),
        filter_by_stream_name: bool = False,
        timeout: float | None = None,
        credentials: Any = None,
    ) -> int:
        for event in self.read_all(backwards=True, filter_exclude=filter_exclude,
                                   filter_include=filter_include,
                                   filter_by_stream_name=filter_by_stream_name, limit=1):
            return event.commit_position or 0
        return 0

    def subscribe_to_all(
        self,
        *,
        commit_position: int | None = None,
        from_end: bool = False,
        resolve_links: bool = False,
        filter_exclude: Sequence[str] = DEFAULT_EXCLUDE_FILTER,
        filter_include: Sequence[str] = (),
        filter_by_stream_name: bool = False,
        include_checkpoints: bool = False,
        include_caught_up: bool = False,
        timeout: float | None = None,
        credentials: Any = None,
        **options: Any,
    ) -> FakeCatchupSubscription:
        self._check_open()
        if from_end:
            index = self.server.end_index()
        elif commit_position:
            index = self.server.index_after(commit_position)
        else:
            index = 0
        subscription = FakeCatchupSubscription(
            self.server, index, _filter(filter_exclude, filter_include, filter_by_stream_name)
        )
        self._subscriptions = [s for s in self._subscriptions if not s.stopped]
        self._subscriptions.append(subscription)
        return subscription

    def close(self) -> None:
        self._is_closed = True
        for subscription in self._subscriptions:
            subscription.stop()
        self._subscriptions.clear()

    def __enter__(self) -> FakeEventStoreDBClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._is_closed:
            raise ProgrammingError("Cannot invoke RPC on closed channel!")


def _check_expected(
    stream_name: str, stream: list[RecordedEvent], expected: int | StreamState
) -> None:
    current = len(stream) - 1  # -1: no stream
    if expected is StreamState.ANY:
        return
    if expected is StreamState.NO_STREAM:
        ok = current == -1
    elif expected is StreamState.EXISTS:
        ok = current >= 0
    else:
        ok = current == expected
    if not ok:
        if current == -1:
            raise WrongCurrentVersion(f"Stream {stream_name!r} does not exist")
        raise WrongCurrentVersion(f"Stream position of last event is {current} not {expected}")


def _filter(exclude: Sequence[str], include: Sequence[str],
            by_stream_name: bool) -> Callable[[RecordedEvent], bool]:
    if include:
        pattern = re.compile(construct_filter_include_regex(include))
    elif exclude:
        pattern = re.compile(construct_filter_exclude_regex(exclude))
    else:
        return lambda event: True

    def accept(event: RecordedEvent) -> bool:
        return pattern.match(event.stream_name if by_stream_name else event.type) is not None

    return accept


def _take(events: Iterable[RecordedEvent], limit: int) -> Iterator[RecordedEvent]:
    for count, event in enumerate(events):
        if count >= limit:
            return
        yield event


# -- named servers, so several clients (our "processes") can share one ---------------------
_servers: dict[str, FakeEventStoreDBServer] = {}
_servers_lock = threading.Lock()


def fake_server(name: str) -> FakeEventStoreDBServer:
    """The fake server called ``name`` (created on first use)."""
    with _servers_lock:
        if name not in _servers:
            _servers[name] = FakeEventStoreDBServer()
        return _servers[name]


def drop_fake_server(name: str) -> None:
    with _servers_lock:
        _servers.pop(name, None)


def fake_client_for(uri: str) -> FakeEventStoreDBClient:
    """A client of the fake server named by ``fake://<name>``."""
    if not uri.startswith(FAKE_SCHEME) or not uri[len(FAKE_SCHEME):]:
        raise ValueError(f"not a fake EventStoreDB URI: {uri!r} (use fake://<name>)")
    return FakeEventStoreDBClient(fake_server(uri[len(FAKE_SCHEME):]))


__all__ = [
    "FAKE_SCHEME",
    "FakeCatchupSubscription",
    "FakeEventStoreDBClient",
    "FakeEventStoreDBServer",
    "InvalidCommitPosition",
    "drop_fake_server",
    "fake_client_for",
    "fake_server",
]
