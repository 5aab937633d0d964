"""Bodies of ``/definitions``: publish (SPEC §3.2 fields + the lab YAML), deprecate, read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.checked import CheckedIn
from domain.naming import MAX_NAME_LENGTH, NAME_PATTERN
from domain.worker_template import LicenseType

SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"
Protocol = Literal["serial", "vnc", "ssh", "telnet", "http", "https", "tcp"]


Strict = CheckedIn  # strict, closed, no control characters (api/schemas/checked.py)


class AmiIn(Strict):
    name_pattern: str = Field("CML-*", min_length=1, max_length=200)
    min_version: str | None = Field(None, max_length=50, pattern=SEMVER)


class ResourceRequirementsIn(Strict):
    cpu_cores: float = Field(gt=0, le=1e6)
    memory_gb: float = Field(gt=0, le=1e9)
    storage_gb: float = Field(gt=0, le=1e9)
    nested_virt: bool = True
    ami: AmiIn = Field(default_factory=AmiIn)


class PortIn(Strict):
    name: str = Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*$", description="e.g. serial_1, vnc_1")
    protocol: Protocol


class DefinitionIn(Strict):
    """Exactly one of ``lab_yaml`` (the text, at most 1 MiB) and ``lab_artifact_uri``."""

    multiline_fields = frozenset({"lab_yaml", "owner_notification"})

    name: str = Field(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN.pattern)
    version: str | None = Field(None, max_length=50, pattern=SEMVER,
                                description="semver; absent: 1.0.0 or a patch bump")
    lab_yaml: str | None = Field(None, description="CML lab YAML text (at most 1 MiB, else 413)")
    lab_artifact_uri: str | None = Field(None, max_length=2000, description="a key or URI in the artifact store")
    form_qualified_name: str = Field(min_length=1, max_length=500)
    resource_requirements: ResourceRequirementsIn
    license_affinity: list[Annotated[LicenseType, Field(strict=False)]] | None = Field(None, min_length=1, max_length=3)
    port_template: list[PortIn] = Field(default_factory=list, max_length=200)
    max_duration_minutes: int = Field(ge=1, le=7 * 24 * 60)
    grading_rules_uri: str | None = Field(None, max_length=2000)
    warm_pool_depth: int = Field(0, ge=0, le=1000)
    owner_notification: str | None = Field(None, max_length=500)

    def spec_fields(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"lab_yaml", "lab_artifact_uri"}, exclude_none=True)
        for optional in ("grading_rules_uri", "owner_notification"):
            data.setdefault(optional, None)
        return data


class DeprecateIn(Strict):
    multiline_fields = frozenset({"reason"})
    reason: str = Field("", max_length=2000)


class AmiOut(BaseModel):
    name_pattern: str
    min_version: str | None


class ResourceRequirementsOut(BaseModel):
    cpu_cores: float
    memory_gb: float
    storage_gb: float
    nested_virt: bool
    ami: AmiOut


class PortOut(BaseModel):
    name: str
    protocol: str


class DefinitionVersionOut(BaseModel):
    name: str
    version: str
    form_qualified_name: str
    lab_yaml_uri: str
    lab_yaml_sha256: str
    resource_requirements: ResourceRequirementsOut
    license_affinity: list[str]
    node_count: int
    port_template: list[PortOut]
    max_duration_minutes: int = Field(ge=1, le=7 * 24 * 60)
    grading_rules_uri: str | None
    warm_pool_depth: int
    owner_notification: str | None
    title: str
    created_by: str
    created_at: datetime
    published_position: int | None = None


class DefinitionOut(BaseModel):
    name: str
    latest_version: str | None
    versions: list[str]
    deprecated: bool
    deprecation_reason: str
    created_at: datetime
    updated_at: datetime
    latest: DefinitionVersionOut | None


class DefinitionPage(BaseModel):
    items: list[DefinitionOut]
    next_cursor: str | None


class DefinitionVersionPage(BaseModel):
    items: list[DefinitionVersionOut]
    next_cursor: str | None


class PublishedOut(BaseModel):
    name: str
    version: str
    created: bool = Field(description="false: the same content was already the latest version")
    lab_yaml_uri: str
    lab_yaml_sha256: str
    node_count: int
    position: int
