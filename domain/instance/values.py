"""Values an instance's events carry: what it asks of a worker, and the grader's verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.errors import InvalidInput
from domain.resources import Resources

if TYPE_CHECKING:
    from domain.definition import DefinitionVersion


@dataclass(frozen=True)
class ScoreReport:
    """A grader's verdict (``grading.session.completed``)."""

    score: float
    max_score: float
    cut_score: float
    passed: bool
    sections: tuple[dict[str, Any], ...] = ()
    report_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("score", "max_score", "cut_score"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidInput(f"score_report.{name}", f"must be a non-negative number, got {value!r}")
        if self.max_score <= 0 or self.score > self.max_score or self.cut_score > self.max_score:
            raise InvalidInput("score_report", f"needs 0 <= score, cut_score <= max_score > 0, got "
                               f"{self.score}/{self.cut_score}/{self.max_score}")
        if not isinstance(self.passed, bool):
            raise InvalidInput("score_report.passed", "must be true or false")
        if not all(isinstance(s, Mapping) for s in self.sections):
            raise InvalidInput("score_report.sections", "must be a list of objects")
        object.__setattr__(self, "sections", tuple(dict(s) for s in self.sections))
        if self.report_url is not None and not isinstance(self.report_url, str):
            raise InvalidInput("score_report.report_url", "must be a string")

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "cut_score": self.cut_score,
            "passed": self.passed,
            "sections": [dict(s) for s in self.sections],
            "report_url": self.report_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoreReport:
        if not isinstance(data, Mapping):
            raise InvalidInput("score_report", "must be an object")
        missing = sorted({"score", "max_score", "cut_score", "passed"} - set(data))
        if missing:
            raise InvalidInput(f"score_report.{missing[0]}", "is required")
        return cls(
            score=data["score"],
            max_score=data["max_score"],
            cut_score=data["cut_score"],
            passed=data["passed"],
            sections=tuple(data.get("sections") or ()),
            report_url=data.get("report_url"),
        )


@dataclass(frozen=True)
class InstanceRequirements:
    """What the pinned definition version asks of a worker (snapshot taken at request time)."""

    cpu_cores: float
    memory_gb: float
    storage_gb: float
    node_count: int
    port_names: tuple[str, ...] = ()
    license_affinity: tuple[str, ...] = ("PERSONAL", "ENTERPRISE", "EVALUATION")
    nested_virt: bool = True
    ami_name_pattern: str = "CML-*"
    ami_min_version: str | None = None
    max_duration_minutes: int = 0

    def __post_init__(self) -> None:
        Resources(self.cpu_cores, self.memory_gb, self.storage_gb)  # validates the numbers
        if isinstance(self.node_count, bool) or not isinstance(self.node_count, int) or self.node_count < 0:
            raise InvalidInput("node_count", f"must be a non-negative integer, got {self.node_count!r}")
        object.__setattr__(self, "port_names", tuple(self.port_names))
        object.__setattr__(self, "license_affinity", tuple(str(v) for v in self.license_affinity))

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_cores, self.memory_gb, self.storage_gb)

    @classmethod
    def from_definition(cls, definition: DefinitionVersion) -> InstanceRequirements:
        rr = definition.resource_requirements
        return cls(
            cpu_cores=rr.cpu_cores,
            memory_gb=rr.memory_gb,
            storage_gb=rr.storage_gb,
            node_count=definition.node_count,
            port_names=tuple(definition.port_names),
            license_affinity=tuple(t.value for t in definition.license_affinity),
            nested_virt=rr.nested_virt,
            ami_name_pattern=rr.ami.name_pattern,
            ami_min_version=rr.ami.min_version,
            max_duration_minutes=definition.max_duration_minutes,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_cores": self.cpu_cores,
            "memory_gb": self.memory_gb,
            "storage_gb": self.storage_gb,
            "node_count": self.node_count,
            "port_names": list(self.port_names),
            "license_affinity": list(self.license_affinity),
            "nested_virt": self.nested_virt,
            "ami_name_pattern": self.ami_name_pattern,
            "ami_min_version": self.ami_min_version,
            "max_duration_minutes": self.max_duration_minutes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstanceRequirements:
        return cls(**{**data, "port_names": tuple(data["port_names"]),
                      "license_affinity": tuple(data["license_affinity"])})


def require_mapping(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be an object, got {type(value).__name__}")
    return dict(value)
