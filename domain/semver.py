"""Semantic versions ``MAJOR.MINOR.PATCH``: parse, compare, bump.

Lablet definition versions and AMI versions are plain release triples; pre-release and
build suffixes are refused rather than half-supported (a version is an immutable key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from domain.errors import InvalidInput

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, field: str = "version") -> Version:
        match = _VERSION.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(field, f"must be a semantic version MAJOR.MINOR.PATCH, got {text!r}")
        return cls(*(int(part) for part in match.groups()))

    def bump_patch(self) -> Version:
        return Version(self.major, self.minor, self.patch + 1)

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def is_version(text: str) -> bool:
    return isinstance(text, str) and _VERSION.match(text.strip()) is not None
