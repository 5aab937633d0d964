"""``/people``: personal data as the people it is about have a right to (GDPR erasure)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from api.auth import Principal, require
from api.deps import Ctx, get_container
from api.schemas import PROBLEM_RESPONSES
from api.schemas.people import ForgottenOut

router = APIRouter(prefix="/people", tags=["people"], responses=PROBLEM_RESPONSES)

Admin = Annotated[Principal, Depends(require())]
OwnerId = Annotated[str, Path(min_length=1, max_length=200, description="the owner id to forget")]


@router.delete("/{owner_id}", status_code=202, response_model=ForgottenOut,
               summary="Forget a person: destroy their key; read models rebuild without them")
def forget_person(request: Request, owner_id: OwnerId, _: Admin, ctx: Ctx) -> dict:
    forgotten = get_container(request).people_service.forget(owner_id, ctx)
    return {"subject_id": forgotten.subject_id, "erased_as": forgotten.erased_as,
            "position": forgotten.position, "read_models": "rebuilding"}
