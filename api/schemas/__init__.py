"""Request and response bodies of the HTTP API (pydantic, one module per resource).

Shared here: the pagination query parameters every list endpoint takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

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
