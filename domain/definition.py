"""LabletDefinition (SPEC §3.2): a named lab template with immutable semver versions.

The stream id is ``named_stream_id("LabletDefinition", name)``. ``publish`` adds a version
(or does nothing when the YAML and the fields are unchanged); instances pin a version through
``version_for_new_instance``. A deprecated definition accepts no new instances and no new
versions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from domain.base import LrmAggregate, named_stream_id
from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from domain.naming import validate_name
from domain.resources import Resources
from domain.semver import Version
from domain.worker_template import LicenseType, parse_license_type, validate_glob

PROTOCOLS = frozenset({"serial", "vnc", "ssh", "telnet", "http", "https", "tcp"})
PORT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
FIRST_VERSION = "1.0.0"


class LabAnalysisLike(Protocol):
    """What ``domain.lab_yaml.analyse`` reports about a lab YAML."""

    title: str
    node_count: int
    placeholders: frozenset[str]


@dataclass(frozen=True)
class PortSpec:
    """One console/service port a lab needs, e.g. ``serial_1`` over ``serial``."""

    name: str
    protocol: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not PORT_NAME.match(self.name):
            raise InvalidInput(
                "port_template", f"port name must be lowercase letters, digits and '_', got {self.name!r}"
            )
        if self.protocol not in PROTOCOLS:
            raise InvalidInput(
                "port_template", f"{self.name}: protocol must be one of {', '.join(sorted(PROTOCOLS))}, "
                f"got {self.protocol!r}"
            )

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "protocol": self.protocol}

    @classmethod
    def from_dict(cls, data: object) -> PortSpec:
        if not isinstance(data, Mapping) or set(data) != {"name", "protocol"}:
            raise InvalidInput("port_template", f"entries must be {{name, protocol}}, got {data!r}")
        name = data["name"].lower() if isinstance(data["name"], str) else data["name"]
        protocol = data["protocol"].lower() if isinstance(data["protocol"], str) else data["protocol"]
        return cls(name, protocol)


@dataclass(frozen=True)
class AmiRequirement:
    name_pattern: str = "CML-*"
    min_version: str | None = None

    def __post_init__(self) -> None:
        validate_glob(self.name_pattern, "resource_requirements.ami.name_pattern")
        if self.min_version is not None:
            Version.parse(self.min_version, "resource_requirements.ami.min_version")

    def to_dict(self) -> dict[str, Any]:
        return {"name_pattern": self.name_pattern, "min_version": self.min_version}


@dataclass(frozen=True)
class ResourceRequirements:
    cpu_cores: float
    memory_gb: float
    storage_gb: float
    nested_virt: bool = True
    ami: AmiRequirement = field(default_factory=AmiRequirement)

    def __post_init__(self) -> None:
        resources = _resources_from(
            {"cpu_cores": self.cpu_cores, "memory_gb": self.memory_gb, "storage_gb": self.storage_gb}
        )
        for name, value in resources.to_dict().items():
            if value <= 0:
                raise InvalidInput(f"resource_requirements.{name}", f"must be positive, got {value:g}")
            object.__setattr__(self, name, value)
        if not isinstance(self.nested_virt, bool):
            raise InvalidInput("resource_requirements.nested_virt", "must be true or false")

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_cores, self.memory_gb, self.storage_gb)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_cores": self.cpu_cores,
            "memory_gb": self.memory_gb,
            "storage_gb": self.storage_gb,
            "nested_virt": self.nested_virt,
            "ami": self.ami.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object) -> ResourceRequirements:
        if not isinstance(data, Mapping):
            raise InvalidInput("resource_requirements", "must be a mapping")
        allowed = {"cpu_cores", "memory_gb", "storage_gb", "nested_virt", "ami"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidInput(f"resource_requirements.{unknown[0]}", "is not a known field")
        missing = sorted({"cpu_cores", "memory_gb", "storage_gb"} - set(data))
        if missing:
            raise InvalidInput(f"resource_requirements.{missing[0]}", "is required")
        ami = data.get("ami") or {}
        if not isinstance(ami, Mapping) or not set(ami) <= {"name_pattern", "min_version"}:
            raise InvalidInput("resource_requirements.ami", "must be {name_pattern, min_version}")
        return cls(
            cpu_cores=data["cpu_cores"],
            memory_gb=data["memory_gb"],
            storage_gb=data["storage_gb"],
            nested_virt=data.get("nested_virt", True),
            ami=AmiRequirement(**ami),
        )


def _resources_from(data: dict[str, Any]) -> Resources:
    try:
        return Resources.from_dict(data)
    except InvalidInput as error:
        raise InvalidInput(f"resource_requirements.{error.field}", error.reason) from None


@dataclass(frozen=True)
class DefinitionSpec:
    """What an author submits to publish a version (``version=None``: let the aggregate choose)."""

    name: str
    form_qualified_name: str
    lab_yaml_uri: str
    resource_requirements: ResourceRequirements
    max_duration_minutes: int
    port_template: tuple[PortSpec, ...] = ()
    license_affinity: tuple[LicenseType, ...] = tuple(LicenseType)
    version: str | None = None
    grading_rules_uri: str | None = None
    warm_pool_depth: int = 0
    owner_notification: str | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.version is not None:
            object.__setattr__(self, "version", str(Version.parse(self.version)))
        for name in ("form_qualified_name", "lab_yaml_uri"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(name, "must be a non-empty string")
        if not isinstance(self.resource_requirements, ResourceRequirements):
            raise InvalidInput("resource_requirements", "must be ResourceRequirements")
        if isinstance(self.max_duration_minutes, bool) or not isinstance(self.max_duration_minutes, int) or (
            self.max_duration_minutes <= 0
        ):
            raise InvalidInput("max_duration_minutes", f"must be a positive integer, got {self.max_duration_minutes!r}")
        ports = tuple(p if isinstance(p, PortSpec) else PortSpec.from_dict(p) for p in self.port_template)
        names = [p.name for p in ports]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInput("port_template", f"duplicate port names: {', '.join(duplicates)}")
        object.__setattr__(self, "port_template", ports)
        affinity = tuple(dict.fromkeys(parse_license_type(v, "license_affinity") for v in self.license_affinity))
        if not affinity:
            raise InvalidInput("license_affinity", "must name at least one licence type")
        object.__setattr__(self, "license_affinity", affinity)
        for name in ("grading_rules_uri", "owner_notification"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidInput(name, "must be a non-empty string or absent")
        if isinstance(self.warm_pool_depth, bool) or not isinstance(self.warm_pool_depth, int) or (
            self.warm_pool_depth < 0
        ):
            raise InvalidInput("warm_pool_depth", f"must be a non-negative integer, got {self.warm_pool_depth!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DefinitionSpec:
        if not isinstance(data, Mapping):
            raise InvalidInput("definition", "must be a mapping")
        allowed = {
            "name", "version", "form_qualified_name", "lab_yaml_uri", "resource_requirements",
            "max_duration_minutes", "port_template", "license_affinity", "grading_rules_uri",
            "warm_pool_depth", "owner_notification",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidInput(unknown[0], "is not a lablet definition field")
        missing = sorted({"name", "form_qualified_name", "lab_yaml_uri", "resource_requirements",
                          "max_duration_minutes"} - set(data))
        if missing:
            raise InvalidInput(missing[0], "is required")
        values = dict(data)
        values["resource_requirements"] = ResourceRequirements.from_dict(data["resource_requirements"])
        values["port_template"] = tuple(PortSpec.from_dict(p) for p in data.get("port_template") or ())
        if "license_affinity" in data:
            if not isinstance(data["license_affinity"], Sequence) or isinstance(data["license_affinity"], str):
                raise InvalidInput("license_affinity", "must be a list of licence types")
            values["license_affinity"] = tuple(data["license_affinity"])
        return cls(**values)


@dataclass(frozen=True)
class DefinitionVersion:
    """One published, immutable version of a definition (what instances pin)."""

    name: str
    version: str
    form_qualified_name: str
    lab_yaml_uri: str
    lab_yaml_sha256: str
    resource_requirements: ResourceRequirements
    license_affinity: tuple[LicenseType, ...]
    node_count: int
    port_template: tuple[PortSpec, ...]
    max_duration_minutes: int
    grading_rules_uri: str | None
    warm_pool_depth: int
    owner_notification: str | None
    title: str
    created_by: str
    created_at: datetime

    @property
    def grading_enabled(self) -> bool:
        return self.grading_rules_uri is not None

    @property
    def port_names(self) -> list[str]:
        return [p.name for p in self.port_template]

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)

    def content(self) -> dict[str, Any]:
        """The fields that define the lab (not who published it, when, or under which number)."""
        data = self.to_dict()
        for key in ("version", "created_by", "created_at"):
            data.pop(key)
        return data

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "form_qualified_name": self.form_qualified_name,
            "lab_yaml_uri": self.lab_yaml_uri,
            "lab_yaml_sha256": self.lab_yaml_sha256,
            "resource_requirements": self.resource_requirements.to_dict(),
            "license_affinity": [t.value for t in self.license_affinity],
            "node_count": self.node_count,
            "port_template": [p.to_dict() for p in self.port_template],
            "max_duration_minutes": self.max_duration_minutes,
            "grading_rules_uri": self.grading_rules_uri,
            "warm_pool_depth": self.warm_pool_depth,
            "owner_notification": self.owner_notification,
            "title": self.title,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DefinitionVersion:
        created_at = data["created_at"]
        if isinstance(created_at, str):
            created_at = datetime.fromisoformat(created_at)
        return cls(
            name=data["name"],
            version=data["version"],
            form_qualified_name=data["form_qualified_name"],
            lab_yaml_uri=data["lab_yaml_uri"],
            lab_yaml_sha256=data["lab_yaml_sha256"],
            resource_requirements=ResourceRequirements.from_dict(data["resource_requirements"]),
            license_affinity=tuple(LicenseType(v) for v in data["license_affinity"]),
            node_count=data["node_count"],
            port_template=tuple(PortSpec.from_dict(p) for p in data["port_template"]),
            max_duration_minutes=data["max_duration_minutes"],
            grading_rules_uri=data["grading_rules_uri"],
            warm_pool_depth=data["warm_pool_depth"],
            owner_notification=data["owner_notification"],
            title=data.get("title", ""),
            created_by=data["created_by"],
            created_at=created_at,
        )


def build_version(
    spec: DefinitionSpec, version: str, lab_yaml_sha256: str, analysis: LabAnalysisLike, ctx: CommandContext
) -> DefinitionVersion:
    """Validate the spec against the analysed YAML and assemble the version."""
    if not isinstance(lab_yaml_sha256, str) or not SHA256.match(lab_yaml_sha256):
        raise InvalidInput("lab_yaml_sha256", "must be 64 lowercase hex digits")
    if analysis.node_count < 1:
        raise InvalidInput("lab_yaml", "declares no nodes")
    declared = {p.name for p in spec.port_template}
    for placeholder in sorted(analysis.placeholders):
        if placeholder not in declared:
            raise InvalidInput(
                "port_template",
                f"lab_yaml uses placeholder {placeholder!r} (${{PORT_{placeholder.upper()}}}) "
                f"but port_template has no entry named {placeholder!r}",
            )
    return DefinitionVersion(
        name=spec.name,
        version=version,
        form_qualified_name=spec.form_qualified_name,
        lab_yaml_uri=spec.lab_yaml_uri,
        lab_yaml_sha256=lab_yaml_sha256,
        resource_requirements=spec.resource_requirements,
        license_affinity=spec.license_affinity,
        node_count=analysis.node_count,
        port_template=spec.port_template,
        max_duration_minutes=spec.max_duration_minutes,
        grading_rules_uri=spec.grading_rules_uri,
        warm_pool_depth=spec.warm_pool_depth,
        owner_notification=spec.owner_notification,
        title=analysis.title or "",
        created_by=ctx.actor,
        created_at=ctx.at,
    )


class LabletDefinition(LrmAggregate):
    """All published versions of one definition, and whether it is deprecated."""

    class DefinitionRegistered(LrmAggregate.Created):
        name: str

        def apply(self, aggregate: LabletDefinition) -> None:
            aggregate.name = self.name
            aggregate.versions = {}
            aggregate.latest_version = None
            aggregate.deprecated = False
            aggregate.deprecation_reason = ""

    class DefinitionVersionPublished(LrmAggregate.Event):
        name: str
        version: str
        previous_version: str | None
        definition: dict[str, Any]

        def apply(self, aggregate: LabletDefinition) -> None:
            aggregate.versions[self.version] = DefinitionVersion.from_dict(self.definition)
            aggregate.latest_version = self.version

    class DefinitionDeprecated(LrmAggregate.Event):
        name: str
        reason: str
        latest_version: str | None

        def apply(self, aggregate: LabletDefinition) -> None:
            aggregate.deprecated = True
            aggregate.deprecation_reason = self.reason

    if TYPE_CHECKING:  # set by the events' apply
        name: str
        versions: dict[str, DefinitionVersion]
        latest_version: str | None
        deprecated: bool
        deprecation_reason: str

    @staticmethod
    def stream_id_for(name: str) -> str:
        return named_stream_id("LabletDefinition", name)

    @classmethod
    def register(cls, name: str, ctx: CommandContext) -> LabletDefinition:
        validate_name(name)
        return cls._create_with(cls.DefinitionRegistered, ctx, id=cls.stream_id_for(name), name=name)

    @classmethod
    def create(
        cls, spec: DefinitionSpec, lab_yaml_sha256: str, analysis: LabAnalysisLike, ctx: CommandContext
    ) -> LabletDefinition:
        """A new definition with its first version (two events, one stream, one save)."""
        # Validate before creating anything, so a bad first version leaves no stream behind.
        build_version(spec, spec.version or FIRST_VERSION, lab_yaml_sha256, analysis, ctx)
        definition = cls.register(spec.name, ctx)
        definition.publish(spec, lab_yaml_sha256, analysis, ctx)
        return definition

    @property
    def latest(self) -> DefinitionVersion | None:
        return self.versions[self.latest_version] if self.latest_version else None

    def publish(
        self, spec: DefinitionSpec, lab_yaml_sha256: str, analysis: LabAnalysisLike, ctx: CommandContext
    ) -> DefinitionVersion:
        """Publish a version; returns it (the latest, unchanged, when nothing differs)."""
        if self.deprecated:
            raise IllegalTransition("LabletDefinition", "DEPRECATED", "publish a new version")
        if spec.name != self.name:
            raise InvalidInput("name", f"definition {self.name!r} cannot publish {spec.name!r}")
        latest = self.latest
        if latest is None:
            number = spec.version or FIRST_VERSION
            candidate = build_version(spec, number, lab_yaml_sha256, analysis, ctx)
        else:
            candidate = build_version(spec, spec.version or latest.version, lab_yaml_sha256, analysis, ctx)
            unchanged = candidate.content() == latest.content()
            if unchanged and spec.version in (None, latest.version):
                return latest
            if spec.version is None:
                candidate = replace(candidate, version=str(latest.semver.bump_patch()))
            elif Version.parse(spec.version) <= latest.semver:
                raise InvalidInput("version", f"must be greater than the latest version {latest.version}, "
                                   f"got {spec.version}")
        self._record(
            self.DefinitionVersionPublished,
            ctx,
            name=self.name,
            version=candidate.version,
            previous_version=self.latest_version,
            definition=candidate.to_dict(),
        )
        return self.versions[candidate.version]

    def deprecate(self, ctx: CommandContext, reason: str = "") -> None:
        if self.deprecated:
            raise IllegalTransition("LabletDefinition", "DEPRECATED", "be deprecated again")
        self._record(self.DefinitionDeprecated, ctx, name=self.name, reason=reason, latest_version=self.latest_version)

    def version_for_new_instance(self, requested: str | None = None) -> DefinitionVersion:
        """The version a new instance pins: ``requested`` or the latest."""
        if self.deprecated:
            raise Conflict(f"definition {self.name!r} is deprecated and accepts no new instances")
        if requested is None:
            if self.latest is None:
                raise NotFound(f"definition {self.name!r} has no published version")
            return self.latest
        try:
            key = str(Version.parse(requested))
        except InvalidInput:
            raise NotFound(f"definition {self.name!r} has no version {requested!r}") from None
        if key not in self.versions:
            raise NotFound(f"definition {self.name!r} has no version {requested!r}")
        return self.versions[key]
