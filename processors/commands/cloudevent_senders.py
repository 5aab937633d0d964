"""Who may send which incoming CloudEvent for which lab (issue 16: ingestion authorization).

An incoming event moves someone's lab, so it is checked against its sender the way the
REST equivalent is:

1. ``admin`` may send anything.
2. **Bindings** (``LRM_CLOUDEVENT_SENDERS``, an admin setting) bind event types, and
   optionally sources and definitions, to the identities allowed to send them, e.g.
   ``{"types": ["lds.session.*"], "sources": ["urn:lds:prod"], "senders": ["service:lds"]}``
   or, to assign a grader to a lab, ``{"types": ["grading.session.*"],
   "definitions": ["ccna-*"], "senders": ["grader:acme"]}``. A binding that covers the
   event's type and the lab's definition is exclusive: only its senders may send it, and
   only with a matching ``source`` (another source: 403, naming the field); anyone else
   gets 404, as for a lab that is not theirs.
3. Without a binding, the REST rules: ``lds.session.started`` is a login and
   ``lds.session.ended`` a collect (``processors.commands.instances.ACTIONS``): a role
   that may never do it gets 403; a ``service`` may drive only the labs it requested and
   anyone else's answers 404 — exactly what ``POST /instances/{id}/login`` answers.
   ``grading.session.*`` needs the ``grader`` role (403 otherwise); any grader may grade
   a lab no binding assigns (bind graders to close this).

Pure: no I/O; the intake passes the instance and a way to learn who requested it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidInput, NotFound
from domain.subscription import type_matches
from processors.commands.instances import ACTIONS, Caller, Forbidden

# What each handled type is, in REST terms (the action of ``ACTIONS``).
LDS_ACTIONS = {"lds.session.started": "login", "lds.session.ended": "collect"}
GRADING_TYPES = frozenset({"grading.session.completed", "grading.session.failed"})


class SourceNotAllowed(InvalidInput):
    """A bound sender used a ``source`` its binding does not name (403, naming the field)."""

    status = 403
    title = "Forbidden"


def _pattern_matches(patterns: Sequence[str], value: str) -> bool:
    """Empty: everything; else exact values or a ``prefix*``."""
    if not patterns:
        return True
    return any(value == p or (p.endswith("*") and value.startswith(p[:-1])) for p in patterns)


def _strings(spec: Mapping[str, Any], key: str, *, required: bool = False) -> tuple[str, ...]:
    value = spec.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"LRM_CLOUDEVENT_SENDERS: {key!r} must be a list of non-empty strings")
    if required and not value:
        raise ValueError(f"LRM_CLOUDEVENT_SENDERS: every binding needs {key!r}")
    return tuple(value)


@dataclass(frozen=True)
class SenderBinding:
    senders: tuple[str, ...]  # actors: "service:lds", "grader:acme"
    types: tuple[str, ...]  # exact types or "prefix.*" (as in subscriptions)
    sources: tuple[str, ...] = ()  # exact sources or "prefix*"; empty: any
    definitions: tuple[str, ...] = ()  # definition names or "prefix*"; empty: any

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> SenderBinding:
        unknown = set(spec) - {"senders", "types", "sources", "definitions"}
        if unknown:
            raise ValueError(f"LRM_CLOUDEVENT_SENDERS: unknown key(s) {', '.join(sorted(unknown))}")
        senders = _strings(spec, "senders", required=True)
        for sender in senders:
            if ":" not in sender:
                raise ValueError(f"LRM_CLOUDEVENT_SENDERS: sender {sender!r} must be role:subject")
        return cls(senders, _strings(spec, "types", required=True), _strings(spec, "sources"),
                   _strings(spec, "definitions"))

    def covers(self, event_type: str, definition_name: str) -> bool:
        return type_matches(self.types, event_type) and _pattern_matches(self.definitions, definition_name)


@dataclass(frozen=True)
class IngestionPolicy:
    bindings: tuple[SenderBinding, ...] = ()

    @classmethod
    def parse(cls, specs: Iterable[Mapping[str, Any]]) -> IngestionPolicy:
        return cls(tuple(SenderBinding.parse(spec) for spec in specs))

    def authorize(
        self, *, actor: str, event_type: str, source: str, instance_id: str, definition_name: str,
        owner_id: str | None, requested_by: Callable[[], str],
    ) -> None:
        """Return if ``actor`` may send this event for this lab; raise 403/404 problems otherwise."""
        role, _, subject = actor.partition(":")
        if role == "admin":
            return
        missing = NotFound(f"instance {instance_id!r} not found")
        bound = [b for b in self.bindings if b.covers(event_type, definition_name)]
        if bound:
            mine = [b for b in bound if actor in b.senders]
            if not mine:
                raise missing
            if not any(_pattern_matches(b.sources, source) for b in mine):
                allowed = sorted({s for b in mine for s in b.sources})
                raise SourceNotAllowed("source", f"{actor} may send {event_type} only with source {', '.join(allowed)}")
            return
        caller = Caller(role, subject)
        if event_type in GRADING_TYPES:
            if role != "grader":
                raise Forbidden(f"role {role} may not send {event_type} (allowed: grader, admin)")
            return
        action = LDS_ACTIONS.get(event_type)
        if action is None:
            return  # not a handled type: the intake ignores it
        if not caller.may(action):
            allowed = ", ".join(sorted(ACTIONS[action]))
            raise Forbidden(f"role {role} may not send {event_type} (allowed: {allowed})")
        if caller.sees_all:
            return
        if not caller.may_see(owner_id, requested_by() if role == "service" else None):
            raise missing
