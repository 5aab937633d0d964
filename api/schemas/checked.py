"""Request-body building blocks that refuse hostile input before a command sees it.

- ``CheckedIn``: the base of every request body. Unknown fields and type coercion are
  refused (``extra="forbid"``, ``strict=True``) and every string in it — nested lists and
  dict keys and values included — is held to ``domain.text``: no control characters, no
  lone surrogates. Fields listed in ``multiline_fields`` may hold tab, LF and CR.
- ``Instant``: an RFC 3339 date-time with an offset, within ``domain.instants``' range.
  A JSON number (a Unix time), a bare date or a local time is refused, where pydantic's
  lax mode would accept ``1790000000`` or ``-255``. Used for bodies and query parameters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from domain.errors import InvalidInput
from domain.instants import parse_instant
from domain.text import text_problem


def _instant(value: Any) -> datetime:
    try:
        return parse_instant("value", value)
    except InvalidInput as error:  # a custom error: its reason reads without "Value error, "
        raise PydanticCustomError("instant", "{reason}", {"reason": error.reason}) from None


Instant = Annotated[
    datetime,
    PlainValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time",
                    "description": "RFC 3339 with an offset, from 2000-01-01 and before 2100-01-01"}),
]


def first_text_problem(value: Any, *, multiline: bool) -> str | None:
    """The reason the first refused string in ``value`` (a str, list or dict) is refused."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item, multiline=multiline)
            if problem is not None:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return None


class CheckedIn(BaseModel):
    """Base of request bodies: strict, closed, and free of control characters."""

    model_config = ConfigDict(extra="forbid", strict=True)
    #: fields that are naturally multi-line text (tab, LF and CR allowed in them)
    multiline_fields: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        problem = first_text_problem(value, multiline=info.field_name in cls.multiline_fields)
        if problem is not None:
            raise PydanticCustomError("text", "{reason}", {"reason": problem})
        return value
