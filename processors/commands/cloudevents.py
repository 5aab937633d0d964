"""Incoming CloudEvents (SPEC §6, §7 "In") turned into LabletInstance commands.

| type | command |
|---|---|
| ``lds.session.started`` | ``login`` (READY/STOPPED -> RUNNING; again while RUNNING: no-op) |
| ``lds.session.ended`` | ``start_collection`` (-> COLLECTING), or ``request_stop`` when the definition has no grading |
| ``grading.session.completed`` | ``complete_grading(ScoreReport)`` (GRADING -> STOPPING) |
| ``grading.session.failed`` | ``fail_grading(reason)`` (GRADING -> STOPPING) |

Which instance: the ``subject`` when it is a ``LabletInstance-<uuid>``, else
``data.instance_id``, else a session id in ``data`` (``session_id``, ``user_session_id``,
``grading_session_id``) looked up among the session ids recorded at READY
(``user_session``) and at GRADING (``grading_session``). Events of another type, or for
an instance nobody knows, are accepted and ignored (logged).

Exactly one effect per ``(source, id)``, across retries, restarts and replicas:

1. the inbox (a table in the read-model database, keyed by ``uuid5(source, id)``) answers
   "duplicate" for an event already acted on, with the outcome of the first time;
2. the events a CloudEvent causes carry its ``id`` as ``causation_id``. The inbox row is
   written as a *claim* before the command and completed after it; when a claim is found
   (a crash between the save and the inbox write, or another replica acting right now)
   or the save lost an optimistic-concurrency race, the instance's stream is checked for
   an event caused by this id from the same caller before acting again, and the answer
   is "duplicate" if there is one. The stream check is not made otherwise, so the same
   id from another source is never mistaken for a duplicate.

A refused event (wrong state, unusable data) releases its claim: a corrected re-send
acts. Ignored events are not recorded.

Who may send what (``cloudevent_senders.IngestionPolicy``): each handled event is checked
against its sender before it acts, as the REST equivalent would be (a service that did not
request a lab gets 404 for it; a role that may never do it, 403; bindings of types and
sources to senders, and of grading results to the graders assigned to a definition).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from uuid import NAMESPACE_URL, uuid5

from domain.context import CommandContext
from domain.errors import DomainError, InvalidInput, NotFound
from domain.instance import LabletInstance, ScoreReport
from processors.commands.cloudevent_senders import IngestionPolicy
from processors.commands.instances import requested_by
from processors.retry import retry_on_conflict
from projections.events import StoredEvent
from projections.readmodel import ReadModelStore, Table

log = logging.getLogger(__name__)

SESSION_STARTED = "lds.session.started"
SESSION_ENDED = "lds.session.ended"
GRADING_COMPLETED = "grading.session.completed"
GRADING_FAILED = "grading.session.failed"
HANDLED_TYPES = frozenset({SESSION_STARTED, SESSION_ENDED, GRADING_COMPLETED, GRADING_FAILED})

INSTANCE_ID = re.compile(r"^LabletInstance-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SESSION_KEYS = ("session_id", "user_session_id", "grading_session_id")

INBOX = Table("cloudevent_inbox", {"instance_id": str})
INBOX_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lablet-resource-manager:inbound-cloudevent")

Result = Literal["accepted", "duplicate", "ignored"]


class MalformedCloudEvent(InvalidInput):
    """The event is well-formed CloudEvents but its ``data`` is not what its type needs."""

    status = 400
    title = "Malformed CloudEvent"


@dataclass(frozen=True)
class IncomingCloudEvent:
    """What the service needs from a parsed CloudEvent (the adapter's SDK object stays out)."""

    id: str
    source: str
    type: str
    subject: str | None = None
    data: Any = None
    correlation_id: str | None = None  # the ``correlationid`` extension, when sent


@dataclass(frozen=True)
class Ingested:
    id: str
    source: str
    type: str
    result: Result
    instance_id: str | None = None
    position: int | None = None  # of the last event the command recorded (None: recorded nothing)
    detail: str = ""


class InstanceStore(Protocol):
    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def read_stream(self, stream_id: str, after_version: int | None = None) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...


def inbox_key(source: str, event_id: str) -> str:
    # The length prefix keeps the key unambiguous whatever characters ``source`` holds.
    return str(uuid5(INBOX_NAMESPACE, f"{len(source)}:{source}|{event_id}"))


class ReadModelInbox:
    """The durable dedup table, in the read-model database (survives restarts)."""

    def __init__(self, store: ReadModelStore) -> None:
        self.store = store
        store.ensure_tables([INBOX])

    def get(self, source: str, event_id: str) -> dict[str, Any] | None:
        return self.store.get(INBOX.name, inbox_key(source, event_id))

    def claim(self, event: IncomingCloudEvent, instance_id: str, at: Any, sender: str = "") -> None:
        """Mark the event as being acted on (before the command, so a crash leaves a trace)."""
        self.put(Ingested(event.id, event.source, event.type, "claimed", instance_id), at,  # type: ignore[arg-type]
                 sender=sender)

    def release(self, source: str, event_id: str) -> None:
        with self.store.transaction() as tx:
            tx.delete(INBOX.name, inbox_key(source, event_id))

    def prune(self, before: datetime) -> int:
        """Forget what was received before ``before``: the dedup window is the retention.

        Rows still ``claimed`` (a command in flight, or a crash left it) are kept: they are the
        trace that makes a redelivery re-run the command rather than answer "duplicate"."""
        removed, cursor = 0, None
        cutoff = before.astimezone(UTC)
        while True:
            page = self.store.query(INBOX.name, limit=500, after=cursor)
            stale = [doc for doc in page.items if doc.get("result") != "claimed"
                     and _received(doc.get("received_at")) is not None and _received(doc["received_at"]) < cutoff]
            if stale:
                with self.store.transaction() as tx:
                    for doc in stale:
                        tx.delete(INBOX.name, inbox_key(doc["source"], doc["id"]))
                removed += len(stale)
            if not page.next_cursor:
                return removed
            cursor = page.next_cursor

    def put(self, ingested: Ingested, at: Any, *, sender: str = "") -> None:
        doc = {"source": ingested.source, "id": ingested.id, "type": ingested.type, "result": ingested.result,
               "instance_id": ingested.instance_id, "position": ingested.position, "received_at": at,
               "sender": sender}
        with self.store.transaction() as tx:
            tx.put(INBOX.name, inbox_key(ingested.source, ingested.id), doc)


@dataclass
class CloudEventIntake:
    store: InstanceStore
    inbox: ReadModelInbox
    # session id -> instance id (a read model); ``catch_up`` waits until read models have
    # applied everything appended so far (a session recorded a moment ago must be found).
    instance_for_session: Callable[[str], str | None]
    catch_up: Callable[[], object] = lambda: None
    handlers: Mapping[str, Callable[[LabletInstance, Any, CommandContext], None]] = field(default_factory=dict)
    policy: IngestionPolicy = field(default_factory=IngestionPolicy)

    def __post_init__(self) -> None:
        self.handlers = {**DEFAULT_HANDLERS, **self.handlers}

    def ingest(self, event: IncomingCloudEvent, ctx: CommandContext) -> Ingested:
        """Act on one event. Raises ``IllegalTransition`` (409) when the instance's state
        does not allow it, ``MalformedCloudEvent`` (400) when its data is unusable."""
        seen = self.inbox.get(event.source, event.id)
        if seen is not None and seen.get("result") != "claimed":
            if seen.get("sender", ctx.actor) not in ("", ctx.actor):
                # Someone else's event id: say no more than that (not which lab it moved).
                return self._ingested(event, "duplicate", None, None, "already received")
            return self._ingested(event, "duplicate", seen.get("instance_id"), seen.get("position"),
                                  f"already {seen.get('result', 'accepted')}")
        handler = self.handlers.get(event.type)
        if handler is None:
            log.info("cloudevent ignored: type %r not handled (source %r, id %r)", event.type, event.source, event.id)
            return self._ingested(event, "ignored", None, None, f"type {event.type!r} is not handled")
        instance_id = self._instance_id(event)
        if instance_id is None:
            log.info("cloudevent ignored: no known instance (type %r, source %r, id %r, subject %r)",
                     event.type, event.source, event.id, event.subject)
            return self._ingested(event, "ignored", None, None, "no known lablet instance")
        command_ctx = CommandContext(
            at=ctx.at, actor=ctx.actor, causation_id=event.id,
            correlation_id=event.correlation_id or ctx.correlation_id,
        )

        # A claim left by an earlier try (crashed, or running in another replica right now)
        # means the effect may already be on the stream: look there before acting.
        check_stream = seen is not None  # ``seen`` here can only be a claim
        self._authorize(event, instance_id, ctx.actor)
        self.inbox.claim(event, instance_id, ctx.at, sender=ctx.actor)

        def attempt() -> Ingested:
            nonlocal check_stream
            instance = self.store.get(instance_id)
            if check_stream and self._already_caused(instance_id, command_ctx):
                return self._ingested(event, "duplicate", instance_id, None, "already applied to the instance")
            # A retry follows a lost race: the writer that won may have been this same event.
            check_stream = True
            handler(instance, event.data, command_ctx)
            if not instance.pending_events:
                return self._ingested(event, "accepted", instance_id, None, "no change")
            return self._ingested(event, "accepted", instance_id, self.store.save(instance))

        try:
            ingested = retry_on_conflict(attempt)
        except DomainError:
            self.inbox.release(event.source, event.id)  # refused: a corrected re-send may act
            raise
        self.inbox.put(replace(ingested, result="accepted"), ctx.at, sender=ctx.actor)
        return ingested

    def ingest_all(self, events: Sequence[IncomingCloudEvent], ctx: CommandContext) -> list[Ingested | DomainError]:
        """Batch mode: each event on its own; a refused one does not stop the others."""
        results: list[Ingested | DomainError] = []
        for event in events:
            try:
                results.append(self.ingest(event, ctx))
            except DomainError as error:
                results.append(error)
        return results

    # -- helpers ------------------------------------------------------------------------
    def _authorize(self, event: IncomingCloudEvent, instance_id: str, actor: str) -> None:
        """Raise 403/404 unless ``actor`` may send this event for this lab (before any write).

        Who requested a lab and which definition it runs never change, so checking once
        before the (retried) command is enough."""
        instance: LabletInstance = self.store.get(instance_id)
        self.policy.authorize(
            actor=actor, event_type=event.type, source=event.source, instance_id=instance_id,
            definition_name=instance.definition_name, owner_id=instance.owner_id,
            requested_by=lambda: requested_by(self.store.read_stream(instance_id)),
        )

    def _instance_id(self, event: IncomingCloudEvent) -> str | None:
        data = event.data if isinstance(event.data, Mapping) else {}
        candidate = event.subject if event.subject and INSTANCE_ID.match(event.subject) else None
        candidate = candidate or _text(data.get("instance_id"))
        if candidate is not None:
            return candidate if INSTANCE_ID.match(candidate) and self._exists(candidate) else None
        sessions = [s for s in (_text(data.get(k)) for k in SESSION_KEYS) if s]
        if not sessions:
            return None
        found = self._by_session(sessions)
        if found is None:
            self.catch_up()  # the session may have been recorded a moment ago
            found = self._by_session(sessions)
        return found

    def _by_session(self, sessions: list[str]) -> str | None:
        for session in sessions:
            if (found := self.instance_for_session(session)) is not None:
                return found
        return None

    def _exists(self, instance_id: str) -> bool:
        try:
            return isinstance(self.store.get(instance_id), LabletInstance)
        except NotFound:
            return False

    def _already_caused(self, instance_id: str, ctx: CommandContext) -> bool:
        return any(
            s.event.metadata.get("causation_id") == ctx.causation_id and s.event.metadata.get("actor") == ctx.actor
            for s in self.store.read_stream(instance_id)
        )

    @staticmethod
    def _ingested(event: IncomingCloudEvent, result: Result, instance_id: str | None, position: int | None,
                  detail: str = "") -> Ingested:
        return Ingested(event.id, event.source, event.type, result, instance_id, position, detail)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value) or None


def _data(data: Any) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise MalformedCloudEvent("data", "must be a JSON object")
    return data


# -- what each type does ----------------------------------------------------------------------

def _session_started(instance: LabletInstance, data: Any, ctx: CommandContext) -> None:
    instance.login(ctx, session_id=_text(_data(data).get("session_id")), source="lds")


def _session_ended(instance: LabletInstance, data: Any, ctx: CommandContext) -> None:
    _data(data)
    if instance.grading_enabled:
        instance.start_collection(ctx, trigger=SESSION_ENDED)
    else:
        instance.request_stop("session_ended", ctx)  # nothing to grade: straight to STOPPING


def _grading_completed(instance: LabletInstance, data: Any, ctx: CommandContext) -> None:
    body = _data(data)
    report = body.get("score_report", body)
    try:
        score_report = ScoreReport.from_dict(report)
    except InvalidInput as error:
        raise MalformedCloudEvent(f"data.{error.field}", error.reason) from None
    instance.complete_grading(score_report, ctx)


def _grading_failed(instance: LabletInstance, data: Any, ctx: CommandContext) -> None:
    body = _data(data)
    reason = body.get("reason") or body.get("error") or "grading failed"
    instance.fail_grading(str(reason)[:2000], ctx)


DEFAULT_HANDLERS: Mapping[str, Callable[[LabletInstance, Any, CommandContext], None]] = {
    SESSION_STARTED: _session_started,
    SESSION_ENDED: _session_ended,
    GRADING_COMPLETED: _grading_completed,
    GRADING_FAILED: _grading_failed,
}


def _received(value: Any) -> datetime | None:
    """``received_at`` as stored (a datetime, or its ISO text once it went through JSON)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return None
    return None
