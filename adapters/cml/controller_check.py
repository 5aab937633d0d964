"""Is this CML controller one we can drive? Judged from ``GET system_information`` at connect.

``system_information`` needs no token and answers ``{"version": "2.10.0+build.21", "ready": bool,
...}``. ``ready`` is false while no compute host can start nodes (for about a minute after the
controller boots, or when every compute is gone). The version is read as CML's official client
reads it (``major.minor.patch`` and an optional suffix); this client speaks CML 2.x from
``minimum`` on (2.8 by default: the oldest release virl2-client 2.10 still supports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_VERSION = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{1,2}).{0,32}$")


@dataclass(frozen=True)
class ControllerStatus:
    """What a worker's controller said about itself, for operators (health) and for the client."""

    worker_id: str
    version: str | None
    ready: bool
    compatible: bool
    problem: str | None  # None when the controller can be used
    checked_at: float

    @property
    def usable(self) -> bool:
        return self.compatible and self.ready

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "ready": self.ready, "compatible": self.compatible,
                "ok": self.usable, "problem": self.problem}


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.match(text)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def judge(worker_id: str, info: Any, minimum: str, now: float) -> ControllerStatus:
    """The status of a controller from its ``system_information`` answer."""
    raw_version = info.get("version") if isinstance(info, dict) else None
    version = str(raw_version) if raw_version is not None else None
    ready = bool(info.get("ready")) if isinstance(info, dict) else False
    problem = _incompatibility(version, minimum)
    if problem is None and not ready:
        problem = "CML controller is not ready: no compute host can start nodes yet"
    return ControllerStatus(worker_id, version, ready, compatible=_incompatibility(version, minimum) is None,
                            problem=problem, checked_at=now)


def _incompatibility(version: str | None, minimum: str) -> str | None:
    parsed = parse_version(version or "")
    floor = parse_version(minimum)
    if floor is None:
        raise ValueError(f"minimum CML version {minimum!r} is not major.minor.patch")
    if parsed is None:
        return f"CML controller reports no usable version ({version!r}); expected CML 2.x"
    if parsed[0] != 2:
        return f"CML controller runs version {version}; this client speaks CML 2.x only"
    if parsed < floor:
        return f"CML controller runs version {version}, older than the oldest supported ({minimum})"
    return None
