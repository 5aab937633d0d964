"""Bodies of ``/worker-templates``: the SPEC §3.1 fields, strictly typed, unknown fields refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.schemas.checked import CheckedIn
from domain.naming import MAX_NAME_LENGTH, NAME_PATTERN
from domain.worker_template import PORT_RANGE_MAX, PORT_RANGE_MIN, LicenseType

Strict = CheckedIn  # strict, closed, no control characters (api/schemas/checked.py)


class CapacityIn(Strict):
    cpu_cores: float = Field(gt=0, le=1e6)
    memory_gb: float = Field(gt=0, le=1e9)
    storage_gb: float = Field(gt=0, le=1e9)


class PortRangeIn(Strict):
    start: int = Field(ge=PORT_RANGE_MIN, le=PORT_RANGE_MAX)
    end: int = Field(ge=PORT_RANGE_MIN, le=PORT_RANGE_MAX)


class WorkerTemplateIn(Strict):
    """``name`` comes from the path; if the body repeats it, the two must agree."""

    multiline_fields = frozenset({"description"})

    name: str | None = Field(None, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN.pattern)
    description: str = Field("", max_length=2000)
    instance_type: str = Field(min_length=1, max_length=100)
    capacity: CapacityIn
    license_type: LicenseType = Field(strict=False)  # a JSON string is the only way to send one
    max_nodes: int = Field(ge=1, le=500, description="PERSONAL allows at most 20")
    ami_pattern: str = Field(min_length=1, max_length=200, description="glob, e.g. CML-2.9.*")
    ami_version: str = Field("", max_length=100)
    region: str = Field(min_length=1, max_length=100)
    port_range: PortRangeIn
    startup_minutes: int = Field(20, ge=1, le=24 * 60)
    restart_minutes: int = Field(5, ge=1, le=24 * 60)
    hourly_cost: float = Field(ge=0, le=1e6)
    drain_timeout_hours: float = Field(4, gt=0, le=24 * 30)
    nested_virt: bool = True
    # EC2's own tag bounds: keys 1-128 characters, values up to 256.
    tags: dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=100)

    def spec_fields(self, name: str) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["name"] = name
        return data


class CapacityOut(BaseModel):
    cpu_cores: float
    memory_gb: float
    storage_gb: float


class PortRangeOut(BaseModel):
    start: int
    end: int


class WorkerTemplateOut(BaseModel):
    name: str
    description: str
    instance_type: str
    capacity: CapacityOut
    license_type: str
    max_nodes: int
    ami_pattern: str
    ami_version: str
    region: str
    port_range: PortRangeOut
    startup_minutes: int
    restart_minutes: int
    hourly_cost: float
    drain_timeout_hours: float
    nested_virt: bool
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime
    stream_version: int
    position: int | None = None
    in_use_by: list[str] | None = Field(None, description="live workers of this template (one template only)")


class WorkerTemplatePage(BaseModel):
    items: list[WorkerTemplateOut]
    next_cursor: str | None


class TemplateWrittenOut(BaseModel):
    name: str
    created: bool
    changed_fields: list[str]
    position: int


class PositionOut(BaseModel):
    """What a command answers: the global event position it produced (use as ``min_position``)."""

    position: int
