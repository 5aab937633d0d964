"""Bodies of ``/instances``: the request, the acknowledgements, the instance, its timeline and past states.

Strings and integers are strict (``"30"`` is not a number of minutes), strings carry no
control characters (``CheckedIn``); times are RFC 3339 strings with an offset, in range
(``Instant``: a Unix number is refused).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import PROBLEM_RESPONSES
from api.schemas.checked import CheckedIn, Instant
from domain.instance import InstanceState
from domain.naming import MAX_NAME_LENGTH

ID_LENGTH = 200


class InstanceRequestIn(CheckedIn):
    """``timeslot_start`` absent or past = as soon as possible; give ``timeslot_end`` or
    ``duration_minutes`` (neither: the definition's maximum duration)."""

    definition: str = Field(min_length=1, max_length=MAX_NAME_LENGTH,
                            description="lablet definition name")
    version: str | None = Field(None, min_length=1, max_length=50,
                                description="semver to pin; absent: the latest version")
    owner_id: str | None = Field(None, min_length=1, max_length=ID_LENGTH,
                                 description="whose lab it is (a user's own subject, whatever is sent)")
    timeslot_start: Instant | None = None
    timeslot_end: Instant | None = None
    duration_minutes: int | None = Field(None, gt=0, le=100_000)
    reservation_id: str | None = Field(None, min_length=1, max_length=ID_LENGTH,
                                       description="the booking system's reference, kept as is")


class InstanceAcceptedOut(BaseModel):
    id: str
    state: InstanceState
    position: int = Field(description="global event position of the command; pass as min_position to read it")


class InstanceOut(BaseModel):
    id: str
    state: InstanceState
    definition_name: str
    definition_version: str
    owner_id: str
    requested_by: str
    reservation_id: str | None
    timeslot_start: datetime | None
    timeslot_end: datetime
    slot_start: datetime = Field(description="effective start (the request time for ASAP)")
    slot_end: datetime
    requirements: dict[str, Any]
    grading_enabled: bool
    worker_id: str | None
    allocated_ports: dict[str, int]
    hold_start: datetime | None
    hold_end: datetime | None
    placement_decision_id: str | None
    cml_lab_id: str | None
    user_session: dict[str, Any] | None
    grading_session: dict[str, Any] | None
    score_report: dict[str, Any] | None
    retry_count: int
    instantiation_attempt: int
    last_error: str | None
    last_placement_failure: str | None = Field(None, description="why the scheduler could not place it (PENDING)")
    lab_yaml_uri: str | None = Field(None, description="the lab YAML with its ports rewritten")
    stop_reason: str | None
    termination_reason: str | None
    phase_times: dict[str, datetime] = Field(description="when it last entered each state")
    requested_at: datetime
    updated_at: datetime
    version: int = Field(description="stream version of the last event applied")
    position: int | None = Field(None, description="global position of the last event applied")


class InstancePage(BaseModel):
    items: list[InstanceOut]
    next_cursor: str | None


class InstanceCountsOut(BaseModel):
    by_state: dict[str, int] = Field(description="every state, zeros included")
    total: int


class InstanceStateAtOut(BaseModel):
    as_of: datetime
    version: int = Field(description="stream version of the last event at or before as_of")
    instance: InstanceOut


class TimelineEntryOut(BaseModel):
    type: str
    stream_id: str = Field(description="the instance stream, or the stream of a related event (worker, placement)")
    version: int
    position: int
    occurred_at: datetime
    actor: str
    causation_id: str
    correlation_id: str
    description: str
    data: dict[str, Any]


class TimelinePage(BaseModel):
    instance_id: str
    items: list[TimelineEntryOut]
    next_cursor: str | None


_MEANINGS = {
    400: "malformed request (JSON syntax)",
    401: "missing or unknown bearer token",
    403: "the caller's role may not do this",
    404: "unknown id, or an instance the caller may not see",
    409: "illegal state transition (with the state) or reused idempotency key",
    413: "request body too large",
    422: "invalid input: the field and the reason",
    429: "this caller has its maximum of open streams (Retry-After)",
    503: "the server has its maximum of open streams (Retry-After)",
    504: "read models did not reach min_position in time",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems an endpoint can answer (so clients and
    schemathesis know them): the API's shared problem schema, with what each status means here."""
    shape = {"content": PROBLEM_RESPONSES[422]["content"]}  # every problem has the same body
    return {status: {**PROBLEM_RESPONSES.get(status, shape), "description": _MEANINGS[status]} for status in statuses}
