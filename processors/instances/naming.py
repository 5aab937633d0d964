"""How the controller names what it creates outside the event store.

A CML import is not idempotent, so the lab's title carries the instance id: before importing,
the controller looks the title up (``find_lab_by_title``) and reuses a lab it finds. The
title is the instance id, so every attempt, every restart and
every controller computes the same one. Artifacts are keyed by instance id for the same reason.
"""

from __future__ import annotations

import re
from urllib.parse import quote
from uuid import NAMESPACE_URL, uuid5

from domain.instance import LabletInstance

INSTANCE_IN_TITLE = re.compile(
    r"^(LabletInstance-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\s|$)"
)
SESSION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lablet-resource-manager:session")


def lab_title(instance: LabletInstance) -> str:
    return title_for(instance.id)


def title_for(instance_id: str) -> str:
    """The instance id itself: CML titles are at most 64 characters and an id takes 51."""
    return instance_id


def instance_id_in_title(title: str) -> str | None:
    match = INSTANCE_IN_TITLE.match(title or "")
    return match.group(1) if match else None


def _segment(instance_id: str) -> str:
    return quote(instance_id, safe="-_.~")


def evidence_key(instance: LabletInstance) -> str:
    """Collected node configurations of one collection (a lab restarted and collected again
    gets its own key: the collection is identified by when it started)."""
    started = instance.entered_at("COLLECTING")  # type: ignore[arg-type]
    stamp = started.strftime("%Y%m%dT%H%M%S%fZ") if started else "unknown"
    return f"instances/{_segment(instance.id)}/evidence/{stamp}/node-configs.json"


def score_report_key(instance: LabletInstance) -> str:
    return f"instances/{_segment(instance.id)}/score-report.json"


def user_session_id(instance: LabletInstance, lab_id: str) -> str:
    """Deterministic: an attempt repeated after a crash records the same session id."""
    return str(uuid5(SESSION_NAMESPACE, f"user|{instance.id}|{lab_id}"))


def grading_session_id(instance: LabletInstance) -> str:
    started = instance.entered_at("COLLECTING")  # type: ignore[arg-type]
    return str(uuid5(SESSION_NAMESPACE, f"grading|{instance.id}|{started.isoformat() if started else ''}"))
