"""WorkerTemplate (SPEC §3.1): the declared shape of a CML worker the autoscaler may launch.

A template is found by its name: its stream id is ``named_stream_id("WorkerTemplate", name)``.
The spec is a validated value object; the aggregate records its registration, updates and
removal. Seeding from ``config/worker-templates.yaml`` creates unknown names only (admin edits
win), see :func:`templates_to_seed`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import TYPE_CHECKING, Any

from domain.base import LrmAggregate, named_stream_id
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput
from domain.naming import validate_name
from domain.resources import Resources

PORT_RANGE_MIN = 2000
PORT_RANGE_MAX = 9999


class LicenseType(str, Enum):
    PERSONAL = "PERSONAL"
    ENTERPRISE = "ENTERPRISE"
    EVALUATION = "EVALUATION"

    def __str__(self) -> str:
        return self.value


# CML licences bound the nodes one host may run. PERSONAL is a hard licence limit; the
# ENTERPRISE figure is the practical cap of one m5zn.metal; EVALUATION has no documented
# limit in the SPEC, so it gets the practical cap too.
LICENSE_NODE_LIMITS: dict[LicenseType, int] = {
    LicenseType.PERSONAL: 20,
    LicenseType.ENTERPRISE: 500,
    LicenseType.EVALUATION: 500,
}


def parse_license_type(value: object, field_name: str = "license_type") -> LicenseType:
    try:
        return LicenseType(str(value).upper()) if isinstance(value, str) else LicenseType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in LicenseType)
        raise InvalidInput(field_name, f"must be one of {allowed}, got {value!r}") from None


@dataclass(frozen=True)
class PortRange:
    """Inclusive range of TCP ports a worker hands out to lab consoles."""

    start: int
    end: int

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"port_range.{name}", f"must be an integer, got {value!r}")
            if not PORT_RANGE_MIN <= value <= PORT_RANGE_MAX:
                raise InvalidInput(
                    f"port_range.{name}", f"must be inside {PORT_RANGE_MIN}-{PORT_RANGE_MAX}, got {value}"
                )
        if self.start >= self.end:
            raise InvalidInput("port_range", f"start must be below end, got {self.start}-{self.end}")

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def as_tuple(self) -> tuple[int, int]:
        return (self.start, self.end)

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, data: object) -> PortRange:
        if not isinstance(data, Mapping) or set(data) != {"start", "end"}:
            raise InvalidInput("port_range", f"must be a mapping with start and end, got {data!r}")
        return cls(data["start"], data["end"])


def _number(value: object, field_name: str, *, positive: bool = True, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(field_name, f"must be a finite number, got {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise InvalidInput(field_name, f"must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return value


def _integer(value: object, field_name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field_name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidInput(field_name, f"must be at least {minimum}, got {value}")
    return value


def validate_glob(pattern: object, field_name: str) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidInput(field_name, "must be a non-empty glob pattern, e.g. 'CML-2.9.*'")
    if pattern.count("[") != pattern.count("]"):
        raise InvalidInput(field_name, f"has unbalanced brackets: {pattern!r}")
    return pattern


def _text(value: object, field_name: str, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(field_name, f"must be a {'non-empty ' if required else ''}string, got {value!r}")
    return value


@dataclass(frozen=True)
class WorkerTemplateSpec:
    """Everything a template declares; validated on construction (``InvalidInput(field, reason)``)."""

    name: str
    instance_type: str
    capacity: Resources
    license_type: LicenseType
    max_nodes: int
    ami_pattern: str
    region: str
    port_range: PortRange
    hourly_cost: float
    description: str = ""
    ami_version: str = ""
    startup_minutes: int = 20
    restart_minutes: int = 5
    drain_timeout_hours: float = 4
    nested_virt: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_name(self.name)
        _text(self.instance_type, "instance_type")
        _text(self.region, "region")
        _text(self.description, "description", required=False)
        _text(self.ami_version, "ami_version", required=False)
        if not isinstance(self.capacity, Resources):
            raise InvalidInput("capacity", "must be Resources")
        for name, value in self.capacity.to_dict().items():
            if value <= 0:
                raise InvalidInput(f"capacity.{name}", f"must be positive, got {value:g}")
        object.__setattr__(self, "license_type", parse_license_type(self.license_type))
        _integer(self.max_nodes, "max_nodes", 1)
        limit = LICENSE_NODE_LIMITS[self.license_type]
        if self.max_nodes > limit:
            raise InvalidInput(
                "max_nodes", f"{self.license_type.value} licence allows at most {limit} nodes, got {self.max_nodes}"
            )
        validate_glob(self.ami_pattern, "ami_pattern")
        if not isinstance(self.port_range, PortRange):
            raise InvalidInput("port_range", "must be a PortRange")
        _number(self.hourly_cost, "hourly_cost", allow_zero=True)
        _integer(self.startup_minutes, "startup_minutes", 1)
        _integer(self.restart_minutes, "restart_minutes", 1)
        _number(self.drain_timeout_hours, "drain_timeout_hours")
        if not isinstance(self.nested_virt, bool):
            raise InvalidInput("nested_virt", f"must be true or false, got {self.nested_virt!r}")
        if not isinstance(self.tags, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
        ):
            raise InvalidInput("tags", "must map strings to strings")
        object.__setattr__(self, "tags", dict(self.tags))

    @property
    def node_limit(self) -> int:
        """Nodes one worker of this template may run (template and licence both bound it)."""
        return min(self.max_nodes, LICENSE_NODE_LIMITS[self.license_type])

    def matches_ami(self, ami_name: str) -> bool:
        return fnmatch.fnmatchcase(ami_name, self.ami_pattern)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what events carry and the YAML file holds)."""
        return {
            "name": self.name,
            "description": self.description,
            "instance_type": self.instance_type,
            "capacity": self.capacity.to_dict(),
            "license_type": self.license_type.value,
            "max_nodes": self.max_nodes,
            "ami_pattern": self.ami_pattern,
            "ami_version": self.ami_version,
            "region": self.region,
            "port_range": self.port_range.to_dict(),
            "startup_minutes": self.startup_minutes,
            "restart_minutes": self.restart_minutes,
            "hourly_cost": self.hourly_cost,
            "drain_timeout_hours": self.drain_timeout_hours,
            "nested_virt": self.nested_virt,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerTemplateSpec:
        if not isinstance(data, Mapping):
            raise InvalidInput("template", f"must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(unknown[0], f"is not a worker template field (known: {', '.join(sorted(known))})")
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise InvalidInput(missing[0], "is required")
        values = dict(data)
        capacity = values["capacity"]
        if not isinstance(capacity, Mapping):
            raise InvalidInput("capacity", "must be a mapping with cpu_cores, memory_gb, storage_gb")
        try:
            values["capacity"] = Resources.from_dict(dict(capacity))
        except InvalidInput as error:
            raise InvalidInput(f"capacity.{error.field}" if error.field != "resources" else "capacity",
                               error.reason) from None
        values["port_range"] = PortRange.from_dict(values["port_range"])
        return cls(**values)

    def changed_fields(self, other: WorkerTemplateSpec) -> list[str]:
        mine, theirs = self.to_dict(), other.to_dict()
        return [name for name in mine if mine[name] != theirs[name]]


class WorkerTemplate(LrmAggregate):
    """The registered template, its current spec, and whether it was removed."""

    class WorkerTemplateRegistered(LrmAggregate.Created):
        name: str
        spec: dict[str, Any]

        def apply(self, aggregate: WorkerTemplate) -> None:
            aggregate.name = self.name
            aggregate.spec = WorkerTemplateSpec.from_dict(self.spec)
            aggregate.removed = False

    class WorkerTemplateUpdated(LrmAggregate.Event):
        name: str
        spec: dict[str, Any]
        changed_fields: list[str]

        def apply(self, aggregate: WorkerTemplate) -> None:
            aggregate.spec = WorkerTemplateSpec.from_dict(self.spec)

    class WorkerTemplateRemoved(LrmAggregate.Event):
        name: str
        reason: str

        def apply(self, aggregate: WorkerTemplate) -> None:
            aggregate.removed = True

    class WorkerTemplateReregistered(LrmAggregate.Event):
        """A removed name registered again (the stream is keyed by name, so it continues)."""

        name: str
        spec: dict[str, Any]

        def apply(self, aggregate: WorkerTemplate) -> None:
            aggregate.spec = WorkerTemplateSpec.from_dict(self.spec)
            aggregate.removed = False

    if TYPE_CHECKING:  # set by the events' apply (class annotations would make it a dataclass)
        name: str
        spec: WorkerTemplateSpec
        removed: bool

    @staticmethod
    def stream_id_for(name: str) -> str:
        return named_stream_id("WorkerTemplate", name)

    @classmethod
    def register(cls, spec: WorkerTemplateSpec, ctx: CommandContext) -> WorkerTemplate:
        return cls._create_with(
            cls.WorkerTemplateRegistered, ctx, id=cls.stream_id_for(spec.name), name=spec.name, spec=spec.to_dict()
        )

    def update(self, spec: WorkerTemplateSpec, ctx: CommandContext) -> list[str]:
        """Replace the spec; returns the changed fields (empty: nothing recorded)."""
        self._refuse_if_removed("update")
        if spec.name != self.name:
            raise InvalidInput("name", f"cannot rename template {self.name!r} to {spec.name!r}")
        changed = spec.changed_fields(self.spec)
        if changed:
            self._record(self.WorkerTemplateUpdated, ctx, name=self.name, spec=spec.to_dict(), changed_fields=changed)
        return changed

    def remove(self, ctx: CommandContext, *, in_use_by: Sequence[str] = (), reason: str = "") -> None:
        """Remove the template; refused while live workers use it (their ids in ``in_use_by``)."""
        self._refuse_if_removed("be removed")
        if in_use_by:
            raise Conflict(
                f"worker template {self.name!r} is used by live workers: {', '.join(sorted(in_use_by))}"
            )
        self._record(self.WorkerTemplateRemoved, ctx, name=self.name, reason=reason)

    def reregister(self, spec: WorkerTemplateSpec, ctx: CommandContext) -> None:
        if not self.removed:
            raise IllegalTransition("WorkerTemplate", "ACTIVE", "be registered again (it exists)")
        if spec.name != self.name:
            raise InvalidInput("name", f"stream of {self.name!r} cannot hold {spec.name!r}")
        self._record(self.WorkerTemplateReregistered, ctx, name=self.name, spec=spec.to_dict())

    def _refuse_if_removed(self, action: str) -> None:
        if self.removed:
            raise IllegalTransition("WorkerTemplate", "REMOVED", action)


def templates_to_seed(
    file_specs: Iterable[WorkerTemplateSpec | Mapping[str, Any]], existing_names: Iterable[str]
) -> list[WorkerTemplateSpec]:
    """The specs from the seed file whose names are unknown (never overwrite: admin edits win).

    ``existing_names`` must include removed templates: an admin's removal is an edit too.
    Duplicate names in the file are refused.
    """
    existing = set(existing_names)
    seen: set[str] = set()
    result: list[WorkerTemplateSpec] = []
    for index, item in enumerate(file_specs):
        spec = item if isinstance(item, WorkerTemplateSpec) else _spec_at(index, item)
        if spec.name in seen:
            raise InvalidInput(f"templates[{index}].name", f"duplicate template name {spec.name!r}")
        seen.add(spec.name)
        if spec.name not in existing:
            result.append(spec)
    return result


def _spec_at(index: int, data: Mapping[str, Any]) -> WorkerTemplateSpec:
    try:
        return WorkerTemplateSpec.from_dict(data)
    except InvalidInput as error:
        raise InvalidInput(f"templates[{index}].{error.field}", error.reason) from None


def parse_templates_yaml(text: str) -> list[WorkerTemplateSpec]:
    """Specs from the text of ``config/worker-templates.yaml`` (``templates:`` list)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        document = YAML(typ="safe").load(text)
    except YAMLError as error:
        raise InvalidInput("worker_templates_yaml", f"is not valid YAML: {error}") from None
    items = document.get("templates") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise InvalidInput("worker_templates_yaml", "must hold a 'templates:' list")
    return templates_to_seed(items, existing_names=())
