"""Incoming CloudEvents over HTTP: binary, structured and batched mode.

The mode is chosen from ``Content-Type`` only, as the HTTP binding says (the SDK's own
detection treats any ``ce-`` header as binary, which breaks structured requests that
also carry ``ce-id``, and has no batch support):

- ``application/cloudevents-batch...`` -> batch (JSON array of JSON-format events);
- ``application/cloudevents...`` -> structured;
- anything else -> binary (attributes in ``ce-*`` headers, body = data).

Media types we do not understand answer 415 (the web hook spec's "format not
understood"): structured or batched events in another format than JSON
(``application/cloudevents+xml``), and binary-mode data that is not JSON
(``application/xml``): every type we act on carries a JSON object.

Every problem raises ``CloudEventParseError(field, reason)`` for a 400 problem body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary_event
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat

from adapters.cloudevents.mapping import CORE_ATTRIBUTES, check_extension_name
from domain.text import document_problem, text_problem

ParseMode = Literal["binary", "structured", "batch"]

MAX_BODY_BYTES = 1024 * 1024
MAX_EVENT_BYTES = 64 * 1024  # what every intermediary must forward (CloudEvents spec)
MAX_BATCH_EVENTS = 100
# The SDK's constructor invents ``id`` (uuid4) when it is missing; an incoming event
# without one must be refused instead, or dedup by (source, id) would be meaningless.
REQUIRED = ("id", "source", "type")


class CloudEventParseError(ValueError):
    """A malformed incoming event: maps to HTTP 400 (or 413 for sizes) with a problem body."""

    status = 400
    title = "Malformed CloudEvent"

    def __init__(self, field: str, reason: str, *, index: int | None = None, status: int = 400) -> None:
        where = f"[{index}]." if index is not None else ""
        super().__init__(f"{where}{field}: {reason}")
        self.field = field
        self.reason = reason
        self.index = index
        self.status = status

    def problem(self) -> dict[str, Any]:
        """RFC 9457 body."""
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": str(self),
            "field": self.field,
            "reason": self.reason,
        }
        if self.index is not None:
            body["index"] = self.index
        return body


@dataclass(frozen=True)
class ParsedRequest:
    mode: ParseMode
    events: list[BaseCloudEvent]


def mode_of(content_type: str | None) -> ParseMode:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents-batch"):
        return "batch"
    if media.startswith("application/cloudevents"):
        return "structured"
    return "binary"


STRUCTURED_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media in ("application/json", "text/json") or media.endswith("+json")


def check_media_type(content_type: str | None, body: bytes) -> None:
    """415 for a Content-Type whose format we cannot read (before anything else is looked at)."""
    media = _media(content_type)
    mode = mode_of(content_type)
    accepted = {"batch": BATCH_JSON, "structured": STRUCTURED_JSON}.get(mode)
    if accepted is not None and media != accepted:
        raise CloudEventParseError(
            "content-type", f"{media!r} is not supported: send {STRUCTURED_JSON}, {BATCH_JSON} or binary mode "
                            "with JSON data", status=415)
    if mode == "binary" and (media or body) and not _is_json(media):
        raise CloudEventParseError(
            "content-type", f"{media or 'no Content-Type'!r} is not supported: binary-mode data must be JSON "
                            f"(application/json), or send {STRUCTURED_JSON}", status=415)


def parse_http(
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_event_bytes: int = MAX_EVENT_BYTES,
    max_batch_events: int = MAX_BATCH_EVENTS,
) -> ParsedRequest:
    """Parse one HTTP request into its events (one, or 0..n in batch mode)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if len(body) > max_body_bytes:
        raise CloudEventParseError("body", f"larger than {max_body_bytes} bytes", status=413)
    check_media_type(lowered.get("content-type"), body)
    mode = mode_of(lowered.get("content-type"))
    if mode == "binary":
        if len(body) > max_event_bytes:
            raise CloudEventParseError("body", f"event larger than {max_event_bytes} bytes", status=413)
        return ParsedRequest(mode, [_binary(lowered, body)])
    document = _json(_utf8(body), "body")
    if mode == "structured":
        if len(body) > max_event_bytes:
            raise CloudEventParseError("body", f"event larger than {max_event_bytes} bytes", status=413)
        return ParsedRequest(mode, [_structured(document)])
    if not isinstance(document, list):
        raise CloudEventParseError("body", "a batch must be a JSON array of events")
    if len(document) > max_batch_events:
        raise CloudEventParseError("body", f"more than {max_batch_events} events in a batch", status=413)
    events = []
    for index, item in enumerate(document):
        if len(json.dumps(item)) > max_event_bytes:
            raise CloudEventParseError("body", f"event larger than {max_event_bytes} bytes", index=index, status=413)
        events.append(_structured(item, index=index))
    return ParsedRequest(mode, events)


def _json(text: str, field: str) -> Any:
    """Parsed JSON, at most ``domain.text.MAX_JSON_DEPTH`` deep, with no control characters
    in its strings (but tab, LF, CR) or keys: an event's text ends up in read models."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CloudEventParseError(field, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # the decoder recurses per level: 50 000 nested arrays end here
        raise CloudEventParseError(field, "invalid JSON: nested too deep") from None
    problem = document_problem(document)
    if problem is not None:
        path, reason = problem
        raise CloudEventParseError(field, f"{path}: {reason}")
    return document


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise CloudEventParseError("body", "not valid UTF-8") from None


def _binary(headers: dict[str, str], body: bytes) -> BaseCloudEvent:
    if "ce-specversion" not in headers:
        raise CloudEventParseError(
            "specversion",
            "missing: send a ce-specversion header (binary mode) or "
            "Content-Type application/cloudevents+json (structured mode)",
        )
    for name in headers:
        if name.startswith("ce-"):
            _check_attribute_name(name[3:], None)
    for name in REQUIRED:
        if not headers.get(f"ce-{name}"):
            raise CloudEventParseError(name, f"required: send a non-empty ce-{name} header")
    if "ce-datacontenttype" in headers:
        raise CloudEventParseError("datacontenttype", "use Content-Type, not ce-datacontenttype, in binary mode")
    for name, value in headers.items():
        if name.startswith("ce-") and text_problem(value) is not None:
            raise CloudEventParseError(name[3:], f"the ce-{name[3:]} header {text_problem(value)}")
    if headers.get("content-type", "").split(";")[0].strip().lower().endswith("json") and body:
        _json(_utf8(body), "data")
    return _validated(lambda: from_binary_event(HTTPMessage(headers, body)), None)


def _structured(document: Any, *, index: int | None = None) -> BaseCloudEvent:
    if not isinstance(document, dict):
        raise CloudEventParseError("body", "an event must be a JSON object", index=index)
    if document.get("specversion") != "1.0":
        raise CloudEventParseError("specversion", "must be \"1.0\"", index=index)
    for name in document:
        _check_attribute_name(name, index)
    for name in REQUIRED:
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise CloudEventParseError(name, "required: a non-empty string", index=index)
    return _validated(lambda: JSONFormat().read(None, json.dumps(document)), index)


def _check_attribute_name(name: str, index: int | None) -> None:
    if name in CORE_ATTRIBUTES:
        return
    try:
        check_extension_name(name)
    except ValueError as exc:
        raise CloudEventParseError(name, str(exc), index=index) from None


def _validated(build: Any, index: int | None) -> BaseCloudEvent:
    try:
        return build()
    except CloudEventValidationError as exc:
        field, problems = next(iter(exc.errors.items()))
        raise CloudEventParseError(field, str(problems[0]), index=index) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CloudEventParseError("body", f"{type(exc).__name__}: {exc}", index=index) from None
