"""Bodies of ``/workers``, ``/capacity`` and ``/reservations``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.checked import CheckedIn
from domain.naming import MAX_NAME_LENGTH, NAME_PATTERN


Strict = CheckedIn  # strict, closed, no control characters (api/schemas/checked.py)


class ProvisionIn(Strict):
    template: str = Field(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN.pattern, description="worker template name")
    reason: str = Field("admin", max_length=500)


class ReasonIn(Strict):
    reason: str = Field("admin", max_length=500)


class DrainIn(ReasonIn):
    """An admin drain. ``timeout_hours`` absent: the template's ``drain_timeout_hours``;
    ``null``: no timeout (nothing is ever ended by the drain); a number: that many hours,
    after which the labs still on the worker are terminated with reason ``drain_timeout``."""

    timeout_hours: float | None = Field(None, gt=0, le=24 * 30)


class WorkerProvisionedOut(BaseModel):
    id: str
    state: str
    position: int


class Usage(BaseModel):
    cpu_cores: float
    memory_gb: float
    storage_gb: float
    nodes: int
    ports: int


class PortInUse(BaseModel):
    port: int
    name: str
    instance_id: str


class ReservationOut(BaseModel):
    instance_id: str
    resources: dict[str, float]
    nodes: int
    ports: dict[str, int]
    hold_start: datetime
    hold_end: datetime
    active: bool


class WorkerOut(BaseModel):
    id: str
    template_name: str
    state: str
    region: str | None
    license_type: str | None
    cloud_instance_id: str | None
    ip: str | None
    expected_ready_at: datetime | None
    drain_deadline: datetime | None
    last_error: str | None
    termination_reason: str | None
    phase_times: dict[str, datetime]
    hourly_cost: float | None
    port_range: dict[str, int]
    declared: Usage
    reserved_now: Usage
    ports_in_use: list[PortInUse]
    reservations: list[ReservationOut]
    created_at: datetime
    updated_at: datetime
    stream_version: int
    position: int | None


class WorkerPage(BaseModel):
    items: list[WorkerOut]
    next_cursor: str | None


class TimelineEntry(BaseModel):
    type: str
    version: int
    position: int | None
    occurred_at: datetime
    actor: str
    causation_id: str
    correlation_id: str
    data: dict[str, Any]


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    next_cursor: str | None


class WorkerCapacity(BaseModel):
    worker_id: str
    template_name: str
    state: str
    declared: Usage
    reserved_now: Usage
    free_now: Usage
    reserved_peak: Usage = Field(description="highest use at any instant of [from, to); ports: held in the window")
    free: Usage = Field(description="declared minus the peak: what one more booking over the whole window may use")
    reservations: int


class TemplateCapacity(BaseModel):
    template_name: str
    workers: int
    states: dict[str, int]
    declared: Usage
    reserved_now: Usage
    free_now: Usage
    reserved_peak: Usage
    free: Usage


class CapacityOut(BaseModel):
    at: datetime
    from_: datetime = Field(alias="from")
    to: datetime
    templates: list[TemplateCapacity]
    workers: list[WorkerCapacity]

    model_config = ConfigDict(populate_by_name=True)


class ReservationRow(ReservationOut):
    worker_id: str
    template_name: str
    worker_state: str


class ReservationPage(BaseModel):
    items: list[ReservationRow]
    next_cursor: str | None
