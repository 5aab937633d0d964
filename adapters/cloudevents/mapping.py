"""Domain event (+ its global position) -> CloudEvent 1.0 -> HTTP message bytes.

Attributes: ``id`` = the deterministic event id, ``type`` = ``ccm.<kind>.<event>``
(see ``types.py``), ``source`` = the deployment's URI, ``subject`` = the aggregate's
stream id, ``time`` = occurred_at, ``datacontenttype`` = application/json, ``data`` =
``event.payload()`` made JSON-safe. Extensions, all strings: ``sequence`` (stream version),
``position`` (global position), and ``correlationid``/``causationid``/``actor`` from the
event metadata when present.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from adapters.cloudevents.types import aggregate_name_of, cloudevent_type
from domain.base import DomainEvent
from processors.ports.webhooks import DeliveryMode, EncodedMessage, OutboundEvent

JSON = "application/json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"

# metadata key -> extension attribute name
METADATA_EXTENSIONS: dict[str, str] = {
    "correlation_id": "correlationid",
    "causation_id": "causationid",
    "actor": "actor",
}
CORE_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time", "data", "data_base64"}
)
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


def check_extension_name(name: str) -> None:
    """CloudEvents naming rule, including the 20-character limit the SDK does not enforce."""
    if not _EXTENSION_NAME.match(name):
        raise ValueError(f"extension name {name!r}: only a-z and 0-9, 1 to 20 characters")
    if name in CORE_ATTRIBUTES:
        raise ValueError(f"extension name {name!r} is reserved")


for _name in ("sequence", "position", *METADATA_EXTENSIONS.values()):
    check_extension_name(_name)


def rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime in event data")
    text = value.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def json_safe(value: Any) -> Any:
    """Plain JSON types only: datetimes as RFC 3339 (UTC, ``Z``), UUIDs and enums by value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [json_safe(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):  # pydantic models
        return json_safe(value.model_dump(mode="json"))
    return str(value)


def type_of(event: DomainEvent) -> str:
    return cloudevent_type(aggregate_name_of(type(event), event.originator_id), event.event_name)


def to_cloudevent(event: DomainEvent, position: int, *, source: str) -> CloudEvent:
    attributes: dict[str, Any] = {
        "id": str(event.event_id),
        "source": source,
        "type": type_of(event),
        "subject": str(event.originator_id),
        "time": event.occurred_at,
        "datacontenttype": JSON,
        "sequence": str(event.originator_version),
        "position": str(position),
    }
    metadata = event.metadata or {}
    for key, extension in METADATA_EXTENSIONS.items():
        if metadata.get(key):
            attributes[extension] = str(metadata[key])
    return CloudEvent(attributes, json_safe(event.payload()))


def to_outbound(event: DomainEvent, position: int, *, source: str) -> OutboundEvent:
    ce = to_cloudevent(event, position, source=source)
    return OutboundEvent(position, ce.get_id(), ce.get_type(), ce.get_subject() or "", ce)


def encode(event: CloudEvent, mode: DeliveryMode) -> EncodedMessage:
    """The HTTP message of one event in ``mode`` (header names lowercase)."""
    if mode == "structured":
        message = to_structured_event(event)
    elif mode == "binary":
        message = to_binary_event(event)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    headers = {k.lower(): v for k, v in message.headers.items()}
    headers.setdefault("content-type", event.get_datacontenttype() or JSON)
    return EncodedMessage(headers, message.body)


def encode_outbound(outbound: OutboundEvent, mode: DeliveryMode) -> EncodedMessage:
    """The dispatcher's ``Encoder``: the OutboundEvent's payload is the CloudEvent."""
    return encode(outbound.payload, mode)


def encode_batch(events: Iterable[CloudEvent]) -> EncodedMessage:
    """Batched mode (the SDK has none): a JSON array of JSON-format events."""
    fmt = JSONFormat()
    body = b"[" + b",".join(fmt.write(e) for e in events) + b"]"
    return EncodedMessage({"content-type": BATCH_CONTENT_TYPE}, body)


def to_json_dict(event: CloudEvent) -> dict[str, Any]:
    """The JSON-format representation as a dict (for APIs that embed events)."""
    return json.loads(JSONFormat().write(event))
