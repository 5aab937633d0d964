"""``POST /instances/{id}/extend``: a lab runs longer (processors/commands/extension.py).

Roles as for the other instance commands (``ACTIONS["extend"]``): a user extends its own
labs, a service the labs it requested, instructors and admins any. 409 ``Extension
refused`` says why (``reasons``) and how far it could go now (``longest_extension_minutes``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.auth import Principal
from api.deps import Ctx, get_container
from api.routes.instances import COMMAND_PROBLEMS, InstanceId, _allowed, body_within_limit, caller
from api.schemas.extensions import ExtendedOut, ExtendIn
from api.schemas.instances import problems

router = APIRouter(prefix="/instances", tags=["instances"])
MayExtend = Annotated[Principal, _allowed("extend")]


@router.post(
    "/{instance_id}/extend", status_code=202, response_model=ExtendedOut,
    responses={**COMMAND_PROBLEMS, **problems(400, 413)},
    summary="Run the lab N minutes longer (its hold on the worker moves with it)",
    dependencies=[Depends(body_within_limit)],
)
def extend_instance(
    request: Request, instance_id: InstanceId, body: ExtendIn, ctx: Ctx, principal: MayExtend
) -> dict[str, Any]:
    container = get_container(request)
    who = caller(principal)
    extended = container.extension_service.extend(
        lambda: container.instance_service.get(instance_id, who, action="extend"), body.minutes, ctx)
    return {"id": extended.instance_id, "state": extended.state, "timeslot_end": extended.timeslot_end,
            "hold_end": extended.hold_end, "moved": list(extended.moved), "position": extended.position}
