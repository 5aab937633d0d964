"""Request and response bodies of the HTTP API (pydantic, one module per resource).

Shared here: the pagination query parameters every list endpoint takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query

from api.problems import ApiProblem

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="page size (default 50, max 500)")]
Cursor = Annotated[
    str | None, Query(max_length=1000, description="opaque: the next_cursor of the previous page")
]


def paged(query: Callable[[], T]) -> T:
    """Run a read-model query; a cursor we did not hand out is the caller's error (422)."""
    try:
        return query()
    except ValueError as error:
        raise ApiProblem(422, "Invalid input", f"not a cursor from this API: {error}", field="cursor") from None


_PROBLEMS = {
    400: "malformed JSON",
    401: "missing or unknown bearer token",
    403: "the caller's role may not do this",
    404: "unknown name or id",
    409: "illegal state transition (with the state) or a conflict such as a template in use",
    413: "lab YAML larger than 1 MiB",
    422: "invalid input: the field and the reason",
    503: "the artifact store is unavailable",
    504: "read models did not reach min_position in time",
}

# Inline (no $ref), so it needs no entry under components/schemas.
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["reason"],
                "properties": {"field": {"type": ["string", "null"]}, "reason": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

# Documented on every control-API operation (router level), so clients and schema checks
# know the shape of every refusal.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": meaning,
        "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
    }
    for status, meaning in _PROBLEMS.items()
}
