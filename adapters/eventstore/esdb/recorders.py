"""The library's recorders over EventStoreDB streams and the ``$all`` log.

Writes: one batch append per aggregate, expecting the revision the aggregate was loaded
at (``originator_version - 1``; ``NO_STREAM`` for version 0), with deterministic event ids
(``domain.base.event_id``). EventStoreDB cannot append to two streams atomically, so a
save of several aggregates first checks every stream's revision, then appends stream by
stream: a writer that sneaks in between can leave the first streams appended and the
rest not (``PartialSaveError``). Repeating the same append is a no-op on the server
(same ids at the same place), which makes retries safe; see docs/event-store-esdb.md.

Reads: a stream by revision range; ``$all`` from a commit position, filtered on the
server to our event types. Commit positions are the notification ids: increasing, with
large gaps — opaque, ordered checkpoints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from esdbclient import NewEvent, RecordedEvent, StreamState
from esdbclient.exceptions import (
    DeadlineExceeded,
    EventStoreDBClientException,
    GrpcError,
    NotFound,
    ServiceUnavailable,
    WrongCurrentVersion,
)
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Subscription,
)

from adapters.eventstore.esdb.client import EsdbClient
from adapters.eventstore.esdb.naming import SNAPSHOT_STREAM_PREFIX, Naming
from domain.base import event_id

JSON = "application/json"
BINARY = "application/octet-stream"


class PartialSaveError(IntegrityError):
    """A multi-aggregate save conflicted after some of its streams were appended.

    ``appended`` names the aggregates whose events are stored. Reload every aggregate
    and re-run the command: LRM commands that touch two aggregates are written to be
    resumable (they skip what is already done).
    """

    def __init__(self, message: str, appended: Sequence[str]) -> None:
        super().__init__(message)
        self.appended = tuple(appended)


class EsdbAggregateRecorder(AggregateRecorder):
    """Aggregate events (or, with ``for_snapshots``, snapshots) in EventStoreDB streams."""

    def __init__(
        self,
        client: EsdbClient,
        naming: Naming,
        *,
        for_snapshots: bool = False,
        content_type: str = BINARY,
    ) -> None:
        self.client = client
        self.naming = naming
        self.for_snapshots = for_snapshots
        self.content_type = content_type

    # -- writes ------------------------------------------------------------------------------
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.for_snapshots:
            self._insert_snapshots(stored_events)
            return None
        return self._insert_aggregate_events(stored_events)

    def _insert_aggregate_events(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        appends = _AppendPlan.per_stream(stored_events, self.naming, self.content_type)
        if len(appends) > 1:
            # Fail before writing anything when a stream is already stale: without
            # multi-stream transactions this keeps partial saves to a true race.
            try:
                for append in appends:
                    self._check_not_stale(append)
            except EventStoreDBClientException as error:
                raise OperationalError(f"checking revisions failed: {error}") from error
        positions: dict[int, int] = {}
        appended: list[str] = []
        for append in appends:
            try:
                commit_position = self.client.append_to_stream(
                    append.stream, current_version=append.expected, events=append.events
                )
                stored = self._read(append.stream, stream_position=append.first_version,
                                    limit=len(append.events))
            except WrongCurrentVersion as error:
                raise _conflict(append, appended, str(error)) from error
            except EventStoreDBClientException as error:
                saved = f" ({', '.join(appended)} saved)" if appended else ""
                raise OperationalError(f"appending to {append.stream} failed{saved}: {error}") \
                    from error
            if not append.is_stored_as(stored):
                # Same ids at the same revisions make the server answer "already done"
                # (its idempotent writes) even when the events differ: ids derive from
                # stream and version only. Reading back tells a retry from a conflict.
                raise _conflict(append, appended, "different events are already there")
            appended.append(append.originator_id)
            for index, record in zip(append.indexes, stored, strict=True):
                # EventStoreDB before 22.10 gives no positions on stream reads.
                positions[index] = record.commit_position or commit_position
        return [positions[i] for i in range(len(stored_events))]

    def _check_not_stale(self, append: _AppendPlan) -> None:
        current = self.client.get_current_version(append.stream)
        if current == append.expected:
            return
        # A retry of an append that already happened is not stale: the server will
        # accept it again as a no-op.
        stored = self._read(append.stream, stream_position=append.first_version,
                            limit=len(append.events))
        if append.is_stored_as(stored):
            return
        raise IntegrityError(
            f"{append.originator_id} is at revision {_revision(current)},"
            f" not {_revision(append.expected)}"
        )

    def _insert_snapshots(self, stored_events: Sequence[StoredEvent]) -> None:
        for snapshot in stored_events:
            originator_id = str(snapshot.originator_id)
            new_event = NewEvent(
                type=self.naming.snapshot_type(snapshot.topic),
                data=snapshot.state,
                metadata=json.dumps({"originator_version": snapshot.originator_version}).encode(),
                content_type=self.content_type,  # type: ignore[arg-type]
                id=event_id(SNAPSHOT_STREAM_PREFIX + originator_id, snapshot.originator_version),
            )
            try:
                # Snapshots are derived data: no expected revision, last one wins.
                self.client.append_to_stream(self.naming.snapshot_stream(originator_id),
                                             current_version=StreamState.ANY, events=[new_event])
            except EventStoreDBClientException as error:
                raise OperationalError(f"saving a snapshot of {originator_id}: {error}") from error

    # -- reads -------------------------------------------------------------------------------
    def select_events(
        self,
        originator_id: Any,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        originator_id = str(originator_id)
        if self.for_snapshots:
            return self._select_snapshots(originator_id, gt, lte, desc, limit)
        stream = self.naming.stream(originator_id)
        count = sys.maxsize if limit is None else limit
        if desc:
            start = None
            if lte is not None:
                # Reading backwards from past the end is not well defined: clamp.
                current = self.client.get_current_version(stream)
                if not isinstance(current, int):
                    return []
                start = min(lte, current)
            if start is not None and gt is not None:
                count = min(count, start - gt)
        else:
            start = 0 if gt is None else gt + 1
            if lte is not None:
                count = min(count, lte - start + 1)
        if count <= 0 or (start is not None and start < 0):
            return []
        selected: list[StoredEvent] = []
        for record in self._iterate(stream, stream_position=start, backwards=desc, limit=count):
            if desc and gt is not None and record.stream_position <= gt:
                break
            selected.append(self._stored(originator_id, record))
        return selected

    def _select_snapshots(
        self, originator_id: str, gt: int | None, lte: int | None, desc: bool, limit: int | None
    ) -> list[StoredEvent]:
        selected: list[StoredEvent] = []
        for record in self._iterate(self.naming.snapshot_stream(originator_id), backwards=desc):
            version = int(json.loads(record.metadata)["originator_version"])
            if (gt is not None and version <= gt) or (lte is not None and version > lte):
                continue
            selected.append(StoredEvent(
                originator_id=originator_id, originator_version=version,
                topic=self.naming.snapshot_topic(record.type), state=record.data,
            ))
            if limit is not None and len(selected) >= limit:
                break
        return selected

    def _stored(self, originator_id: str, record: RecordedEvent) -> StoredEvent:
        topic = self.naming.topic(record.type)
        if record.commit_position is None:
            return StoredEvent(originator_id, record.stream_position, topic, record.data)
        # With the position, stream reads can say where each event is in the global log.
        return Notification(originator_id=originator_id, originator_version=record.stream_position,
                            topic=topic, state=record.data, id=record.commit_position)

    def _read(self, stream: str, **options: Any) -> list[RecordedEvent]:
        return list(self._iterate(stream, **options))

    def _iterate(self, stream: str, **options: Any) -> Iterator[RecordedEvent]:
        try:
            response = self.client.read_stream(stream, **options)
            try:
                yield from response
            finally:
                response.stop()
        except NotFound:
            return
        except EventStoreDBClientException as error:
            raise OperationalError(f"reading {stream} failed: {error}") from error


class EsdbApplicationRecorder(EsdbAggregateRecorder, ApplicationRecorder):
    """Aggregate events plus the application sequence: ``$all``, filtered to our types."""

    def __init__(self, client: EsdbClient, naming: Naming, *, content_type: str = BINARY) -> None:
        super().__init__(client, naming, content_type=content_type)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        type_filter = self.naming.type_filter(topics)
        notifications: list[Notification] = []
        cursor, inclusive = start or 0, inclusive_of_start
        while len(notifications) < limit:
            wanted = limit - len(notifications) + 1  # +1: the record at the cursor itself
            batch = self._read_all(cursor, type_filter, wanted)
            for record in batch:
                position = record.commit_position or 0
                if position < cursor or (position == cursor and not inclusive):
                    continue
                if stop is not None and position > stop:
                    return notifications
                if self.naming.is_ours(record.type):  # the server filtered; be sure
                    notifications.append(self._notification(record))
                    if len(notifications) == limit:
                        return notifications
            if len(batch) < wanted:
                break  # the end of the log
            cursor, inclusive = batch[-1].commit_position or cursor, False
        return notifications

    def max_notification_id(self) -> int | None:
        try:
            position = self.client.get_commit_position(filter_include=[self.naming.type_filter()])
        except EventStoreDBClientException as error:
            raise OperationalError(f"reading the end of $all failed: {error}") from error
        return position or None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        from adapters.eventstore.esdb.subscription import EsdbSubscription

        return EsdbSubscription(self, gt=gt, topics=topics)

    def _read_all(self, cursor: int, type_filter: str, limit: int) -> list[RecordedEvent]:
        try:
            return self._read_all_from(cursor, type_filter, limit)
        except (ServiceUnavailable, DeadlineExceeded) as error:
            raise OperationalError(f"reading $all failed: {error}") from error
        except GrpcError as error:
            if not cursor:
                raise OperationalError(f"reading $all failed: {error}") from error
            # Not the position of a record (a checkpoint typed in by hand, a position
            # from another database): find the records after it from the end instead.
            return self._read_all_back_to(cursor, type_filter, limit)

    def _read_all_from(self, cursor: int, type_filter: str, limit: int) -> list[RecordedEvent]:
        response = self.client.read_all(commit_position=cursor or None,
                                        filter_include=[type_filter], limit=limit)
        try:
            return list(response)
        finally:
            response.stop()

    def _read_all_back_to(self, cursor: int, type_filter: str, limit: int) -> list[RecordedEvent]:
        newer: list[RecordedEvent] = []
        response = self.client.read_all(backwards=True, filter_include=[type_filter])
        try:
            for record in response:
                if (record.commit_position or 0) < cursor:
                    break
                newer.append(record)
        finally:
            response.stop()
        return list(reversed(newer))[:limit]

    def _notification(self, record: RecordedEvent) -> Notification:
        return Notification(
            originator_id=self.naming.originator_id(record.stream_name),
            originator_version=record.stream_position,
            topic=self.naming.topic(record.type),
            state=record.data,
            id=record.commit_position or 0,
        )


class _AppendPlan:
    """One stream's share of a save: its events, where they go, what revision to expect."""

    def __init__(self, originator_id: str, stream: str, first_version: int) -> None:
        self.originator_id = originator_id
        self.stream = stream
        self.first_version = first_version
        self.expected: int | StreamState = (
            StreamState.NO_STREAM if first_version == 0 else first_version - 1
        )
        self.events: list[NewEvent] = []
        self.indexes: list[int] = []  # where each event was in the saved sequence

    @classmethod
    def per_stream(
        cls, stored_events: Sequence[StoredEvent], naming: Naming, content_type: str
    ) -> list[_AppendPlan]:
        plans: dict[str, _AppendPlan] = {}
        for index, stored in enumerate(stored_events):
            originator_id = str(stored.originator_id)
            plan = plans.get(originator_id)
            if plan is None:
                if stored.originator_version < 0:
                    raise ProgrammingError(f"{originator_id}: negative version")
                plan = plans[originator_id] = cls(
                    originator_id, naming.stream(originator_id), stored.originator_version
                )
            elif stored.originator_version != plan.first_version + len(plan.events):
                raise IntegrityError(f"{originator_id}: versions must follow each other")
            plan.indexes.append(index)
            plan.events.append(NewEvent(
                type=naming.event_type(stored.topic),
                data=stored.state,
                content_type=content_type,  # type: ignore[arg-type]
                id=event_id(originator_id, stored.originator_version),
            ))
        return list(plans.values())

    def is_stored_as(self, stored: Sequence[RecordedEvent]) -> bool:
        """Whether ``stored`` (read at our revisions) are exactly our events."""
        return len(stored) == len(self.events) and all(
            (s.id, s.type, s.data) == (e.id, e.type, e.data)
            for s, e in zip(stored, self.events, strict=True)
        )


def _conflict(append: _AppendPlan, appended: Sequence[str], reason: str) -> IntegrityError:
    if appended:
        return PartialSaveError(
            f"{append.originator_id} changed concurrently after {', '.join(appended)}"
            f" were saved: {reason}", appended,
        )
    return IntegrityError(f"{append.originator_id} changed concurrently: {reason}")


def _revision(version: int | StreamState) -> str:
    return "no stream" if version is StreamState.NO_STREAM else str(version)
