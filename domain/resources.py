"""Resources: the cpu/memory/storage triple that workers offer and lablets need."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidInput

# Sums of fractional cores drift (0.1 + 0.2 > 0.3); comparisons and subtractions
# forgive differences this small so a ledger never rejects an exact fit.
TOLERANCE = 1e-9

FIELDS = ("cpu_cores", "memory_gb", "storage_gb")


@dataclass(frozen=True)
class Resources:
    cpu_cores: float
    memory_gb: float
    storage_gb: float

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInput(name, f"must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidInput(name, f"must be finite, got {value!r}")
            if value < 0:
                if value > -TOLERANCE:
                    value = 0.0
                else:
                    raise InvalidInput(name, f"must not be negative, got {value:g}")
            object.__setattr__(self, name, float(value))

    def __add__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        return Resources(
            self.cpu_cores + other.cpu_cores,
            self.memory_gb + other.memory_gb,
            self.storage_gb + other.storage_gb,
        )

    def __sub__(self, other: Resources) -> Resources:
        """Difference; raises ``InvalidInput`` if any field would go negative."""
        if not isinstance(other, Resources):
            return NotImplemented
        return Resources(
            self.cpu_cores - other.cpu_cores,
            self.memory_gb - other.memory_gb,
            self.storage_gb - other.storage_gb,
        )

    def fits_within(self, other: Resources) -> bool:
        return not self.exceeded_fields(other)

    def exceeded_fields(self, capacity: Resources) -> list[str]:
        """Names of the fields where ``self`` is larger than ``capacity``."""
        return [name for name in FIELDS if getattr(self, name) > getattr(capacity, name) + TOLERANCE]

    def headroom(self, used: Resources) -> Resources:
        """``self - used`` clamped at zero per field (capacity left, never negative)."""
        return Resources(*(max(0.0, getattr(self, n) - getattr(used, n)) for n in FIELDS))

    def elementwise_max(self, other: Resources) -> Resources:
        return Resources(*(max(getattr(self, n), getattr(other, n)) for n in FIELDS))

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resources:
        if not isinstance(data, dict):
            raise InvalidInput("resources", f"must be a mapping, got {type(data).__name__}")
        missing = [name for name in FIELDS if name not in data]
        if missing:
            raise InvalidInput("resources", f"missing {', '.join(missing)}")
        return cls(*(data[name] for name in FIELDS))

    def __str__(self) -> str:
        return f"{self.cpu_cores:g} cores, {self.memory_gb:g} GB memory, {self.storage_gb:g} GB storage"


ZERO = Resources(0.0, 0.0, 0.0)
