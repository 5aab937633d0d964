"""Lablet instances (SPEC §3.3) as callers drive them: request, login, collect, stop, start, terminate.

Who may do what is data (``ACTIONS``): the API turns the roles into its 403s, and the
service enforces the ownership part, answering ``NotFound`` (404) for an instance the caller
may not see, so that ids of other people's labs cannot be probed.

Idempotent requests need no extra table: with an ``Idempotency-Key`` the instance's stream id
is ``uuid5(caller, key)``, and the ``InstanceRequested`` event keeps the request's fingerprint
(SHA-256 of its canonical form) in its metadata. The same key again finds the stream: same
fingerprint → the same instance, different fingerprint → ``IdempotencyKeyReused`` (409).
Two racing first requests collide on the new stream (optimistic concurrency) and the loser
re-reads and answers like a replay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import NAMESPACE_URL, uuid5

from domain.context import CommandContext
from domain.definition import LabletDefinition
from domain.errors import Conflict, DomainError, InvalidInput, NotFound
from domain.instance import InstanceState, LabletInstance
from domain.naming import validate_name
from domain.timeslot import validate_timeslot
from domain.worker import Worker
from processors.aggregates import load_or_none
from processors.commands.workspace import Workspace
from processors.retry import retry_on_conflict
from projections.events import StoredEvent

if TYPE_CHECKING:
    from processors.commands.quotas import QuotaService

IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrm:instance-idempotency-key")
MAX_IDEMPOTENCY_KEY_LENGTH = 200

# action -> roles that may do it (admin always may). Ownership narrows it further for
# ``user`` (instances it owns) and ``service`` (instances it requested): see ``Caller.may_see``.
ACTIONS: dict[str, frozenset[str]] = {
    "request": frozenset({"admin", "user", "service"}),
    "read": frozenset({"admin", "instructor", "user", "service"}),
    "login": frozenset({"admin", "user", "service"}),
    "collect": frozenset({"admin", "instructor", "user", "service"}),
    "stop": frozenset({"admin", "instructor", "user", "service"}),
    "start": frozenset({"admin"}),
    "terminate": frozenset({"admin", "instructor", "user", "service"}),
    "extend": frozenset({"admin", "instructor", "user", "service"}),
}
# Roles that see and act on every instance; the others only on their own.
SEES_ALL = frozenset({"admin", "instructor"})


class InstanceStore(Protocol):
    """The event store calls used here (``adapters.eventstore.EventStore`` has them)."""

    def save(self, *aggregates: Any) -> int: ...

    def get(self, aggregate_id: str, version: int | None = None) -> Any: ...

    def exists(self, aggregate_id: str) -> bool: ...

    def read_stream(self, stream_id: str, after_version: int | None = None) -> list[StoredEvent]: ...

    def max_position(self) -> int: ...


class IdempotencyKeyReused(Conflict):
    title = "Idempotency key reused"


class Forbidden(DomainError):
    """The caller's role may not do this at all (the API checks roles first; this is the backstop)."""

    status = 403
    title = "Forbidden"


@dataclass(frozen=True)
class Caller:
    """Who sends a command: a role and a subject (``api.auth.Principal`` without the web)."""

    role: str
    subject: str

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.subject}"

    @property
    def sees_all(self) -> bool:
        return self.role in SEES_ALL

    def may(self, action: str) -> bool:
        return self.role in ACTIONS[action] or self.role == "admin"

    def may_see(self, owner_id: str | None, requested_by: str | None) -> bool:
        if self.sees_all:
            return True
        if self.role == "user":
            return owner_id == self.subject
        if self.role == "service":
            return requested_by == self.actor
        return False

    def scope(self) -> dict[str, str]:
        """The read-model filter that limits a list to what this caller may see."""
        if self.sees_all:
            return {}
        if self.role == "user":
            return {"owner_id": self.subject}
        if self.role == "service":
            return {"requested_by": self.actor}
        return {"owner_id": "\x00nobody"}


@dataclass(frozen=True)
class InstanceRequest:
    """What a caller asks for (the body of ``POST /instances``)."""

    definition: str
    version: str | None = None
    owner_id: str | None = None
    timeslot_start: datetime | None = None
    timeslot_end: datetime | None = None
    duration_minutes: int | None = None
    reservation_id: str | None = None

    def fingerprint(self) -> str:
        """SHA-256 of the canonical request: keys sorted, absent = null, times in UTC."""

        def canonical(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.astimezone(UTC).isoformat()
            return value

        body = {k: canonical(v) for k, v in sorted(asdict(self).items())}
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Requested:
    instance_id: str
    state: str
    position: int
    created: bool  # False: an idempotent replay of an earlier request (nothing recorded)


@dataclass(frozen=True)
class Changed:
    instance_id: str
    state: str
    position: int


@dataclass(frozen=True)
class InstanceAsOf:
    """An instance reconstructed from the events that had happened by ``as_of``."""

    instance: LabletInstance
    version: int
    as_of: datetime
    requested_by: str


@dataclass(frozen=True)
class _RequestContext(CommandContext):
    """The command context plus what makes a request idempotent, kept in the event metadata."""

    idempotency_key: str = ""
    request_fingerprint: str = ""

    def metadata(self) -> dict[str, str]:
        data = super().metadata()
        if self.idempotency_key:
            data["idempotency_key"] = self.idempotency_key
            data["request_fingerprint"] = self.request_fingerprint
        return data


def idempotent_instance_id(caller: Caller, key: str) -> str:
    """The same caller and key always name the same stream; another caller's key never does."""
    name = "\n".join((caller.actor, key))
    return f"{LabletInstance.stream_prefix()}-{uuid5(IDEMPOTENCY_NAMESPACE, name)}"


def validate_idempotency_key(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise InvalidInput("Idempotency-Key", f"must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters")
    return key


def _service_subject(actor: str) -> str | None:
    """``service:exam`` → ``exam``: a service's bookings count against its own quota."""
    return actor.split(":", 1)[1] if actor.startswith("service:") else None


def requested_by(events: Sequence[StoredEvent]) -> str:
    return events[0].event.actor if events else ""


class InstanceService:
    def __init__(self, store: InstanceStore, quota: QuotaService | None = None) -> None:
        self.store = store
        self.quota = quota  # bookings over quota are refused (processors/commands/quotas.py)

    # -- reads that need the authoritative stream ---------------------------------------
    def get(self, instance_id: str, caller: Caller, *, action: str = "read") -> LabletInstance:
        """The instance if ``caller`` may ``action`` it; ``NotFound`` if unknown or not theirs."""
        self._require_role(caller, action)
        instance = self._load(instance_id)
        if not caller.sees_all:
            requester = requested_by(self.store.read_stream(instance_id)) if caller.role == "service" else None
            if not caller.may_see(instance.owner_id, requester):
                raise NotFound(f"instance {instance_id!r} not found")
        return instance

    def state_at(self, instance_id: str, caller: Caller, at: datetime) -> InstanceAsOf:
        """The instance as of ``at``: its stream replayed up to the last event with occurred_at ≤ at."""
        self._require_role(caller, "read")
        if at.tzinfo is None:
            raise InvalidInput("at", "must carry a timezone (e.g. 2026-03-01T09:00:00Z)")
        events = self._stream(instance_id)
        requester = requested_by(events)
        first = events[0].event
        if not caller.may_see(getattr(first, "owner_id", None), requester):
            raise NotFound(f"instance {instance_id!r} not found")
        happened = 0
        for stored in events:
            if stored.occurred_at > at:
                break  # a stream's history is a prefix: later events never count
            happened += 1
        if happened == 0:
            raise NotFound(f"instance {instance_id!r} did not exist at {at.isoformat()} "
                           f"(requested at {first.timestamp.isoformat()})")
        version = events[happened - 1].version
        return InstanceAsOf(self.store.get(instance_id, version=version), version, at, requester)

    # -- commands --------------------------------------------------------------------------
    def request(
        self, request: InstanceRequest, caller: Caller, ctx: CommandContext, *, idempotency_key: str | None = None
    ) -> Requested:
        """A new PENDING instance pinned to a definition version (the scheduler places it)."""
        self._require_role(caller, "request")
        owner_id = self._owner_for(request, caller)
        if idempotency_key is None:
            return retry_on_conflict(lambda: self._request_new(request, owner_id, ctx, None))
        key = validate_idempotency_key(idempotency_key)
        instance_id = idempotent_instance_id(caller, key)
        fingerprint = request.fingerprint()
        request_ctx = _RequestContext(
            at=ctx.at, actor=ctx.actor, causation_id=ctx.causation_id, correlation_id=ctx.correlation_id,
            idempotency_key=key, request_fingerprint=fingerprint,
        )

        def attempt() -> Requested:
            if self.store.exists(instance_id):
                return self._replay(instance_id, fingerprint, key)
            return self._request_new(request, owner_id, request_ctx, instance_id)

        return retry_on_conflict(attempt)

    def login(self, instance_id: str, caller: Caller, ctx: CommandContext) -> Changed:
        return self._change(instance_id, caller, "login", lambda i: i.login(ctx, source="api"))

    def collect(self, instance_id: str, caller: Caller, ctx: CommandContext) -> Changed:
        return self._change(instance_id, caller, "collect", lambda i: i.start_collection(ctx, trigger="api"))

    def stop(self, instance_id: str, caller: Caller, ctx: CommandContext) -> Changed:
        return self._change(instance_id, caller, "stop", lambda i: i.request_stop(f"{caller.role}_request", ctx))

    def start(self, instance_id: str, caller: Caller, ctx: CommandContext) -> Changed:
        return self._change(instance_id, caller, "start", lambda i: i.restart(ctx, reason=f"{caller.role}_request"))

    def terminate(self, instance_id: str, caller: Caller, ctx: CommandContext) -> Changed:
        """End the instance and give its capacity back to the worker, in one atomic save.

        Users and services cancel (``cancelled``); admins and instructors terminate
        (``admin``); an ARCHIVED lab simply completes.
        """

        def attempt() -> Changed:
            instance = self.get(instance_id, caller, action="terminate")
            held_on = instance.worker_id if instance.holds_capacity else None
            if instance.state is InstanceState.ARCHIVED:
                reason = None
            else:
                reason = "admin" if caller.sees_all else "cancelled"
            instance.terminate(reason, ctx, detail=f"by {caller.actor}")
            changed: list[Any] = [instance]
            worker = self._worker(held_on) if held_on else None
            if worker is not None and worker.release(instance_id, ctx, reason=f"instance terminated ({reason})"):
                changed.append(worker)
            position = self.store.save(*changed)
            return Changed(instance_id, instance.state.value, position)

        return retry_on_conflict(attempt)

    # -- internals ---------------------------------------------------------------------------
    def _require_role(self, caller: Caller, action: str) -> None:
        if not caller.may(action):
            raise Forbidden(f"role {caller.role} may not {action} instances")

    def _owner_for(self, request: InstanceRequest, caller: Caller) -> str:
        if caller.role == "user":
            return caller.subject  # users book for themselves, whatever the body says
        if request.owner_id:
            return request.owner_id
        if caller.role == "service":
            raise InvalidInput("owner_id", "is required when a service requests an instance")
        return caller.subject

    def _request_new(
        self, request: InstanceRequest, owner_id: str, ctx: CommandContext, instance_id: str | None
    ) -> Requested:
        definition = self._definition(request.definition)
        try:
            version = definition.version_for_new_instance(request.version)
        except NotFound as error:
            raise InvalidInput("version", error.detail) from None
        timeslot = validate_timeslot(
            request.timeslot_start, request.timeslot_end, now=ctx.at,
            max_duration_minutes=version.max_duration_minutes, duration_minutes=request.duration_minutes,
        )
        instance = LabletInstance.request(
            version, owner_id, timeslot, ctx, reservation_id=request.reservation_id, instance_id=instance_id,
        )
        if self.quota is None:
            return Requested(instance.id, instance.state.value, self.store.save(instance), created=True)
        workspace = Workspace(self.store)
        workspace.add(instance)
        self.quota.charge(workspace, [instance], _service_subject(ctx.actor), ctx)
        return Requested(instance.id, instance.state.value, workspace.save(), created=True)

    def _replay(self, instance_id: str, fingerprint: str, key: str) -> Requested:
        events = self.store.read_stream(instance_id)
        recorded = events[0].event.metadata.get("request_fingerprint") if events else None
        if recorded != fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used for a different request (instance {instance_id}); "
                "use a new key for a new request"
            )
        instance = self._load(instance_id)
        return Requested(instance_id, instance.state.value, self.store.max_position(), created=False)

    def _definition(self, name: str) -> LabletDefinition:
        try:
            validate_name(name)
        except InvalidInput as error:
            raise InvalidInput("definition", error.reason) from None
        try:
            definition = self.store.get(LabletDefinition.stream_id_for(name))
        except NotFound:
            definition = None
        if not isinstance(definition, LabletDefinition):
            raise InvalidInput("definition", f"no lablet definition named {name!r}")
        return definition

    def _load(self, instance_id: str) -> LabletInstance:
        if not isinstance(instance_id, str) or not instance_id.startswith(f"{LabletInstance.stream_prefix()}-"):
            raise NotFound(f"instance {instance_id!r} not found")
        try:
            instance = self.store.get(instance_id)
        except NotFound:
            raise NotFound(f"instance {instance_id!r} not found") from None
        if not isinstance(instance, LabletInstance):
            raise NotFound(f"instance {instance_id!r} not found")
        return instance

    def _stream(self, instance_id: str) -> list[StoredEvent]:
        """The instance's events; ``NotFound`` like ``_load`` when it is not an instance."""
        missing = NotFound(f"instance {instance_id!r} not found")
        if not isinstance(instance_id, str) or not instance_id.startswith(f"{LabletInstance.stream_prefix()}-"):
            raise missing
        events = self.store.read_stream(instance_id)
        if not events or not isinstance(events[0].event, LabletInstance.InstanceRequested):
            raise missing
        return events

    def _worker(self, worker_id: str) -> Worker | None:
        return load_or_none(self.store, worker_id, Worker)

    def _change(
        self, instance_id: str, caller: Caller, action: str, command: Callable[[LabletInstance], None]
    ) -> Changed:
        def attempt() -> Changed:
            instance = self.get(instance_id, caller, action=action)
            command(instance)
            position = self.store.save(instance)  # nothing pending (an idempotent repeat): max_position
            return Changed(instance_id, instance.state.value, position)

        return retry_on_conflict(attempt)
