"""What in an event is personal data, and how an erased person reads afterwards.

A person is whoever an ``owner_id`` names, and the subject of a human caller's actor
(``user:alice``, ``instructor:bob``, ``admin:carol``). Services, graders and the system
(``service:lms``, ``grader:auto``, ``system:scheduler``) are not people.

The event store keeps these values encrypted with a key per person (crypto-shredding,
docs/operations/security.md): forgetting the person destroys the key, and every later read
of those events shows :func:`erased_name` instead, so counts, capacity and the audit trail
stay whole while the identity is gone.
"""

from __future__ import annotations

# Event fields holding a person: an owner id, or an actor string ("role:subject").
OWNER_FIELDS = frozenset({"owner_id"})
ACTOR_FIELDS = frozenset({"owner", "created_by", "actor", "requested_by"})
PERSON_ROLES = frozenset({"user", "instructor", "admin"})

ERASED_PREFIX = "erased-"


def person_of_actor(actor: str) -> tuple[str, str] | None:
    """``("user", "alice")`` for ``"user:alice"``; ``None`` when the actor is not a person."""
    role, sep, subject = actor.partition(":")
    if not sep or role not in PERSON_ROLES or not subject:
        return None
    return role, subject


def erased_name(subject_id: str) -> str:
    """How a forgotten person reads everywhere: stable per person, linking to nothing else."""
    return f"{ERASED_PREFIX}{subject_id.replace('-', '')[:12]}"


def is_erased(value: str) -> bool:
    return value.startswith(ERASED_PREFIX)
