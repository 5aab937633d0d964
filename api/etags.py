"""``ETag`` / ``If-Match`` for admin edits (templates, definitions, subscriptions).

The entity tag is the aggregate's stream version (``"7"``): it changes with every event, so
two admins who read the same version and both edit collide on the second edit (``412``),
instead of the second silently overwriting the first. ``If-Match: *`` means "whatever is
there" (an explicit overwrite). Without ``If-Match``, an edit of something that exists is
``428 Precondition required`` (``LRM_REQUIRE_IF_MATCH``, on by default); creating something
new needs no tag. The check against the version is made by the command itself, on the
aggregate it loads and saves with optimistic concurrency, so no edit slips in between.
"""

from __future__ import annotations

from fastapi import Request, Response

from api.problems import ApiProblem
from processors.commands.preconditions import ANY_VERSION

HEADER = "If-Match"


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def if_match(request: Request, *, exists: bool) -> int | None:
    """The stream version the caller edits (``ANY_VERSION`` for ``*``), or None when no tag
    is needed (a creation, or If-Match not required). Raises 428 / 412 for a missing or
    malformed tag."""
    header = request.headers.get(HEADER)
    if header is None or not header.strip():
        if exists and request.app.state.container.settings.require_if_match:
            raise ApiProblem(428, "Precondition required",
                             "send If-Match with the ETag you read (GET it first): another admin may have "
                             "changed it since; If-Match: * overwrites whatever is there", field=HEADER)
        return None
    value = header.strip()
    if value == "*":
        return ANY_VERSION
    tags = [t.strip().removeprefix("W/").strip('"') for t in value.split(",")]
    if len(tags) != 1 or not tags[0].isdigit():
        raise ApiProblem(412, "Precondition failed", f"If-Match {value!r} is not an ETag of this API (\"<n>\")",
                         field=HEADER)
    return int(tags[0])
