"""FastAPI dependencies shared by the resource routers: container, command context, read-your-writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from api.auth import Principal, current_principal
from api.problems import ApiProblem
from domain.context import CommandContext


def get_container(request: Request):  # noqa: ANN201 - api.container.Container
    return request.app.state.container


def command_context(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> CommandContext:
    return context_for(request, principal)


def context_for(request: Request, principal: Principal) -> CommandContext:
    """Time and provenance of a command: the caller as actor, the request id as cause."""
    container = request.app.state.container
    state = request.scope["state"]  # set by RequestContextMiddleware for every request
    return CommandContext(
        at=container.clock.now(),
        actor=principal.actor,
        causation_id=state["request_id"],
        correlation_id=state["correlation_id"],
    )


def read_your_writes(
    request: Request,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="wait until the read models have applied this event position"),
    ] = None,
) -> int | None:
    """Bounded wait (LRM_READ_WAIT_SECONDS) for the read models to reach ``min_position``.

    A read model that has not caught up in time answers 504 with the positions, so the
    client knows to retry rather than silently reading stale data.
    """
    if min_position is None:
        return None
    container = request.app.state.container
    head = container.store.max_position()
    if min_position > head:
        # No command has produced it yet: waiting could only time out.
        raise ApiProblem(422, "Invalid input",
                         f"min_position {min_position} is beyond the end of the log ({head})",
                         field="min_position")
    timeout = container.settings.read_wait_seconds
    if not container.wait_for_position(min_position, timeout):
        raise ApiProblem(
            504,
            "Read model behind",
            f"read models have not reached position {min_position} within {timeout} s; retry",
            field="min_position",
        )
    return min_position


Ctx = Annotated[CommandContext, Depends(command_context)]
ReadYourWrites = Annotated[int | None, Depends(read_your_writes)]
