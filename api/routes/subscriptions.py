"""``/subscriptions``: webhook subscriptions to outgoing CloudEvents, their delivery log, replay
and dead letters. Graders manage their own; admins see and manage all."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import Principal, Role, require
from api.deps import Ctx, ReadYourWrites, get_container
from api.etags import if_match, set_etag
from api.problems import ApiProblem
from api.schemas import PROBLEM_RESPONSES, Cursor, Limit, paged
from api.schemas.subscriptions import (
    MAX_POSITION,
    DeadLetterPage,
    DeliveryPage,
    ReasonIn,
    RedeliveryOut,
    ReplayIn,
    RotateSecretIn,
    SecretRotatedOut,
    SubscriptionCreatedOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
)
from api.schemas.templates import PositionOut
from domain.errors import NotFound
from processors.commands.preconditions import require_version
from projections.readmodel import decode_cursor, encode_cursor
from projections.readmodels.subscriptions import SubscriptionQueries

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

Grader = Annotated[Principal, Depends(require(Role.GRADER))]
SubscriptionId = Annotated[str, Path(max_length=100, description="WebhookSubscription-<uuid>")]
EventId = Annotated[str, Path(max_length=100, description="the CloudEvent id (= webhook-id)")]


def _owner(principal: Principal) -> str | None:
    """Whose subscriptions the caller may see: all for an admin, else its own."""
    return None if principal.role is Role.ADMIN else principal.actor


def _service(request: Request):  # noqa: ANN202 - processors.dispatcher.subscriptions.SubscriptionService
    return get_container(request).subscription_service


def _int_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        value, _ = decode_cursor(cursor)
        number = int(value)
    except (ValueError, TypeError):
        number = -1
    if not 0 <= number <= MAX_POSITION:
        raise ApiProblem(422, "Invalid input", "not a cursor from this API", field="cursor")
    return number


@router.post("", response_model=SubscriptionCreatedOut, status_code=201,
             summary="Subscribe a URL to CloudEvents; the answer holds the signing secret (shown once)")
def create(request: Request, body: SubscriptionIn, ctx: Ctx, principal: Grader) -> dict:
    created = _service(request).create(
        ctx, owner=principal.actor, url=body.url, types=body.types, subjects=body.subjects, mode=body.mode,
        auth_token=body.auth_token,
    )
    return {"id": created.subscription_id, "url": body.url, "types": body.types, "subjects": body.subjects,
            "mode": body.mode, "owner": principal.actor, "secret": created.secret, "position": created.position}


@router.get("", response_model=SubscriptionPage, summary="List subscriptions (a grader's own; all for admin)")
def list_subscriptions(
    request: Request, principal: Grader, _: ReadYourWrites, limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    queries = SubscriptionQueries(get_container(request).read_models)
    page = paged(lambda: queries.list(owner=_owner(principal), limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/{subscription_id}", response_model=SubscriptionOut, summary="Read one subscription")
def get_subscription(request: Request, response: Response, subscription_id: SubscriptionId, principal: Grader,
                     _: ReadYourWrites) -> dict:
    doc = SubscriptionQueries(get_container(request).read_models).get(subscription_id)
    owner = _owner(principal)
    if doc is None or (owner is not None and doc["owner"] != owner):
        raise NotFound(f"subscription {subscription_id!r} not found")
    set_etag(response, int(doc["stream_version"]))  # If-Match this to delete it
    return doc


@router.delete("/{subscription_id}", response_model=PositionOut, status_code=202,
               summary="Delete: delivery stops and its checkpoint is dropped")
def delete(request: Request, subscription_id: SubscriptionId, ctx: Ctx, principal: Grader) -> dict:
    service = _service(request)
    current = service.get(subscription_id, owner=_owner(principal))
    require_version(current, if_match(request, exists=True), f"subscription {subscription_id!r}")
    return {"position": service.delete(subscription_id, ctx, owner=_owner(principal))}


@router.post("/{subscription_id}/replay", response_model=PositionOut, status_code=202,
             summary="Re-send every matching event with a position greater than from_position")
def replay(request: Request, subscription_id: SubscriptionId, body: ReplayIn, ctx: Ctx, principal: Grader) -> dict:
    position = _service(request).replay(subscription_id, body.from_position, ctx, owner=_owner(principal))
    return {"position": position}


@router.post("/{subscription_id}/rotate-secret", response_model=SecretRotatedOut,
             summary="New signing secret (shown once); the old one keeps signing during the overlap")
def rotate_secret(request: Request, subscription_id: SubscriptionId, ctx: Ctx, principal: Grader,
                  body: RotateSecretIn | None = None) -> dict:
    overlap = timedelta(seconds=(body or RotateSecretIn()).overlap_seconds)
    rotated = _service(request).rotate_secret(subscription_id, ctx, overlap=overlap, owner=_owner(principal))
    return {"id": rotated.subscription_id, "secret": rotated.secret,
            "previous_valid_until": rotated.previous_valid_until, "position": rotated.position}


@router.post("/{subscription_id}/disable", response_model=PositionOut, status_code=202,
             summary="Pause delivery (the checkpoint is kept)")
def disable(request: Request, subscription_id: SubscriptionId, ctx: Ctx, principal: Grader,
            body: ReasonIn | None = None) -> dict:
    reason = body.reason if body else "disabled by its owner"
    return {"position": _service(request).disable(subscription_id, reason, ctx, owner=_owner(principal))}


@router.post("/{subscription_id}/enable", response_model=PositionOut, status_code=202,
             summary="Resume delivery from the checkpoint (e.g. after a 410 disabled it)")
def enable(request: Request, subscription_id: SubscriptionId, ctx: Ctx, principal: Grader) -> dict:
    return {"position": _service(request).enable(subscription_id, ctx, owner=_owner(principal))}


@router.get("/{subscription_id}/deliveries", response_model=DeliveryPage,
            summary="Delivery attempts, newest first: time, status, latency, error, outcome")
def deliveries(
    request: Request, subscription_id: SubscriptionId, principal: Grader,
    event_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    _service(request).get(subscription_id, owner=_owner(principal))
    before = _int_cursor(cursor)
    rows = get_container(request).webhooks.attempt_page(
        subscription_id, event_id=event_id, limit=limit + 1, before=before
    )
    items = [
        {"event_id": a.event_id, "position": a.position, "subject": a.subject, "attempt": a.attempt, "at": a.at,
         "status": a.status, "latency_ms": round(a.latency * 1000, 3), "error": a.error, "outcome": a.outcome,
         "next_attempt_at": a.next_attempt_at}
        for _, a in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1][0], "attempt") if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{subscription_id}/dead-letters", response_model=DeadLetterPage,
            summary="Events given up on (not retryable, or the retry budget was spent), by position")
def dead_letters(
    request: Request, subscription_id: SubscriptionId, principal: Grader, limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    _service(request).get(subscription_id, owner=_owner(principal))
    after = _int_cursor(cursor)
    found = get_container(request).webhooks.dead_letter_page(
        subscription_id, limit=limit + 1, after_position=-1 if after is None else after
    )
    items = [
        {"event_id": d.event_id, "position": d.position, "subject": d.subject, "type": d.type, "reason": d.reason,
         "attempts": d.attempts, "at": d.at, "redelivering": d.redelivering}
        for d in found[:limit]
    ]
    next_cursor = encode_cursor(found[limit - 1].position, "dead-letter") if len(found) > limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.post("/{subscription_id}/dead-letters/{event_id}/redeliver", response_model=RedeliveryOut,
             status_code=202, summary="Send a dead letter again (same body, fresh signature)")
def redeliver(request: Request, subscription_id: SubscriptionId, event_id: EventId, principal: Grader) -> dict:
    _service(request).get(subscription_id, owner=_owner(principal))
    if not get_container(request).webhooks.redeliver(subscription_id, event_id):
        raise NotFound(f"no dead letter {event_id!r} for subscription {subscription_id!r}")
    return {"event_id": event_id, "redelivering": True}
