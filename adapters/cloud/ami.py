"""Choosing a machine image: a glob on its name, an optional minimum version, newest first.

Shared by the EC2 adapter (which asks EC2 for candidates) and the simulated cloud (which has
a catalogue), so both pick the same image for the same template.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from processors.ports.cloud import AmiNotFound

_VERSION = re.compile(r"\d+(?:\.\d+)+|\d+")


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    created_at: str  # ISO 8601 as EC2 reports CreationDate; sorts lexicographically


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first dotted number in ``text``: ``CML-2.9.1-20261101`` gives ``(2, 9, 1)``."""
    match = _VERSION.search(text)
    return tuple(int(part) for part in match.group(0).split(".")) if match else None


def _at_least(version: tuple[int, ...] | None, minimum: tuple[int, ...]) -> bool:
    if version is None:
        return False
    width = max(len(version), len(minimum))
    pad = lambda v: v + (0,) * (width - len(v))  # noqa: E731 - 2.9 == 2.9.0
    return pad(version) >= pad(minimum)


def ec2_name_filter(pattern: str) -> str:
    """EC2 name filters know ``*`` and ``?`` only; widen ``[...]`` classes to ``?``.

    The result is a superset; ``pick_image`` applies the exact glob afterwards.
    """
    return re.sub(r"\[[^\]]*\]", "?", pattern)


def pick_image(images: Iterable[Image], pattern: str, min_version: str | None = None) -> Image:
    """The newest image whose name matches ``pattern`` and whose version is ``>= min_version``.

    Ties on creation time are broken by version, then by id, so the choice is deterministic.
    """
    minimum = parse_version(min_version) if min_version else None
    if min_version and minimum is None:
        raise AmiNotFound(f"ami_version {min_version!r} has no version number", code="InvalidAmiVersion")
    candidates = [
        image
        for image in images
        if fnmatch.fnmatchcase(image.name, pattern)
        and (minimum is None or _at_least(parse_version(image.name), minimum))
    ]
    if not candidates:
        wanted = pattern + (f" with version >= {min_version}" if min_version else "")
        raise AmiNotFound(f"no image named like {wanted}", code="AmiNotFound")
    return max(candidates, key=lambda i: (i.created_at, parse_version(i.name) or (), i.image_id))
