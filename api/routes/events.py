"""``/events``: the global event log as pages, and live as Server-Sent Events (admin, instructor).

The stream never blocks the server: one hub per process polls the log in a worker thread
and fans each new event out to every open stream (``api.streaming.hub``); a stream that
starts behind the head first catches up from the store on its own. Every SSE message has
``id`` = the event's global position, so a reconnecting client (``Last-Event-ID``) resumes
right after the last event it saw; without one it starts at ``?after=``, or at the head
(new events only). Comment pings keep proxies from closing an idle stream. Open streams
are capped per caller (429) and per process (503), both with Retry-After
(``api.streaming.caps``; ``LRM_SSE_MAX_STREAMS``, ``LRM_SSE_MAX_STREAMS_PER_CALLER``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse

from api.auth import Principal, Role, require
from api.deps import get_container
from api.problems import ApiProblem
from api.schemas.events import EventOut, EventPage
from api.schemas.instances import problems
from api.streaming.caps import RETRY_AFTER_SECONDS, StreamLease, TooManyStreams
from api.streaming.hub import SSE_SEPARATOR, Rendered, wire_of
from projections.events import StoredEvent
from projections.readmodel import dumps
from projections.readmodels.instances import iso

router = APIRouter(prefix="/events", tags=["events"])

Auditor = Annotated[Principal, Depends(require(Role.INSTRUCTOR))]
PING_SECONDS = 15
STREAM_BATCH = 500
MAX_POSITION = 2**63 - 1  # positions are 64-bit integers in every store


def event_json(stored: StoredEvent) -> dict[str, Any]:
    event = stored.event
    metadata = getattr(event, "metadata", {}) or {}
    payload = event.payload() if hasattr(event, "payload") else {}
    return {
        "position": stored.position,
        "type": stored.event_name,
        "stream_id": stored.stream_id,
        "version": stored.version,
        "occurred_at": iso(stored.occurred_at),
        "actor": metadata.get("actor", ""),
        "causation_id": metadata.get("causation_id", ""),
        "correlation_id": metadata.get("correlation_id", ""),
        "data": json.loads(dumps(payload)),
    }


@router.get("", response_model=EventPage, responses=problems(401, 403, 422),
            summary="The global event log after a position, in order")
def list_events(
    request: Request, _: Auditor,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION, description="position to read after (0: from the start)")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="page size (default 50, max 500)")] = 50,
) -> dict[str, Any]:
    store = get_container(request).store
    head = store.max_position()
    batch = store.read_all(after=after, limit=limit)
    return {
        "items": [event_json(e) for e in batch],
        "next_after": batch[-1].position if batch else after,
        "head": head,
    }


def _resume_from(last_event_id: str | None, after: int | None, head: int) -> int:
    if last_event_id is not None:
        if not last_event_id.strip().isdigit() or int(last_event_id) > MAX_POSITION:
            raise ApiProblem(422, "Invalid input", "must be an event position (a non-negative integer)",
                             field="Last-Event-ID")
        return int(last_event_id)
    return head if after is None else after


class _LeasedEventStream(EventSourceResponse):
    """Gives its stream's lease back however the response ends (closed, cancelled, HEAD)."""

    def __init__(self, content: AsyncIterator[bytes], lease: StreamLease) -> None:
        super().__init__(content, ping=PING_SECONDS, sep=SSE_SEPARATOR)
        self.lease = lease

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.release()


def rendered(stored: StoredEvent) -> Rendered:
    # Through the same model as /events, so both render an event identically.
    return Rendered(stored.position, stored.event_name, EventOut.model_validate(event_json(stored)).model_dump_json())


@router.get(
    "/stream", summary="Live event log as Server-Sent Events (id = position; resumable)",
    responses={200: {"description": "text/event-stream: event = type, id = position, data = the event JSON",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}},
               **problems(401, 403, 422, 429, 503)},
)
async def stream_events(
    request: Request, principal: Auditor,
    after: Annotated[int | None, Query(ge=0, le=MAX_POSITION,
                                       description="start after this position (default: the head)")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventSourceResponse:
    container = get_container(request)
    store, hub = container.store, container.event_hub
    position = _resume_from(last_event_id, after, await anyio.to_thread.run_sync(store.max_position))
    try:
        lease = container.stream_caps.acquire(principal.actor)
    except TooManyStreams as refused:
        raise ApiProblem(refused.status, "Too many streams", refused.detail, field="stream",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None

    async def messages() -> AsyncIterator[bytes]:
        # Each chunk is whole SSE messages encoded once per event (Rendered.wire): everything
        # ready is sent at once, so a busy log costs a stream one send per batch.
        nonlocal position
        subscriber = await hub.subscribe()
        try:
            # Catch up from the store on this stream's own (to where the hub was when it joined),
            # then follow the hub; what both deliver is skipped by position.
            while position < subscriber.joined_at:
                batch = await anyio.to_thread.run_sync(lambda: store.read_all(after=position, limit=STREAM_BATCH))
                if not batch:
                    break
                items = [rendered(stored) for stored in batch]
                position = max(position, items[-1].position)
                yield wire_of(items)
            while True:
                first = await subscriber.queue.get()
                if first is None:  # fell too far behind: end; the client resumes with Last-Event-ID
                    return
                ready, behind = subscriber.take_ready(first)
                fresh = [item for item in ready if item.position > position]
                if fresh:
                    position = fresh[-1].position
                    yield wire_of(fresh)
                if behind:
                    return
        finally:
            hub.unsubscribe(subscriber)
            lease.release()

    return _LeasedEventStream(messages(), lease)
