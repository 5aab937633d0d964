"""``/quotas``: admins set per-owner, per-group (course) and per-service quotas; everyone sees their own.

A booking over quota is a 409 ``Quota exceeded`` with ``quota``, ``limits`` and ``remaining``
(processors/commands/quotas.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response

from api.auth import Principal, Role, current_principal, require
from api.deps import Ctx, get_container
from api.schemas.instances import problems
from api.schemas.quotas import QuotaIn, QuotaListOut, QuotaSetOut, QuotaStatusOut
from domain.quota import QuotaLimits

router = APIRouter(prefix="/quotas", tags=["quotas"])
Admin = Annotated[Principal, Depends(require())]
Auditor = Annotated[Principal, Depends(require(Role.INSTRUCTOR))]
Anyone = Annotated[Principal, Depends(current_principal)]
Kind = Literal["owners", "groups", "services"]
Name = Annotated[str, Path(min_length=1, max_length=200)]
KIND = {"owners": "owner", "groups": "group", "services": "service"}


@router.get("", response_model=QuotaListOut, responses=problems(401, 403), summary="Every quota with its use now")
def list_quotas(request: Request, _: Auditor) -> dict[str, Any]:
    service = get_container(request).quota_service
    policy = service.policy()
    subjects = sorted(policy.limits) if policy else []
    return {"items": service.status(subjects, get_container(request).clock.now())}


@router.get("/me", response_model=QuotaListOut, responses=problems(401),
            summary="The quotas that apply to the caller's own bookings, with what remains")
def my_quotas(request: Request, principal: Anyone) -> dict[str, Any]:
    service = get_container(request).quota_service
    subjects = service.subjects_of(principal.role.value, principal.subject)
    return {"items": service.status(subjects, get_container(request).clock.now())}


@router.get("/{kind}/{name}", response_model=QuotaStatusOut, responses=problems(401, 403, 404, 422),
            summary="One quota with its use now")
def get_quota(request: Request, kind: Kind, name: Name, _: Auditor) -> dict[str, Any]:
    from domain.errors import NotFound
    from domain.quota import subject_key

    subject = subject_key(KIND[kind], name)
    found = get_container(request).quota_service.status([subject], get_container(request).clock.now())
    if not found:
        raise NotFound(f"no quota for {subject}")
    return found[0]


@router.put("/{kind}/{name}", status_code=202, response_model=QuotaSetOut, responses=problems(400, 401, 403, 422),
            summary="Set a quota (admin); 200 when it already is this")
def set_quota(request: Request, response: Response, kind: Kind, name: Name, body: QuotaIn, ctx: Ctx,
              _: Admin) -> dict[str, Any]:
    limits = QuotaLimits(body.max_concurrent_labs, body.max_lab_hours_per_day)
    changed, position = get_container(request).quota_service.set(KIND[kind], name, limits, ctx,
                                                                 members=body.members)
    response.status_code = 202 if changed else 200
    return {"quota": f"{KIND[kind]}:{name}", "changed": changed, "position": position}


@router.delete("/{kind}/{name}", status_code=202, response_model=QuotaSetOut, responses=problems(401, 403, 404, 422),
               summary="Remove a quota (admin)")
def remove_quota(request: Request, kind: Kind, name: Name, ctx: Ctx, _: Admin) -> dict[str, Any]:
    position = get_container(request).quota_service.remove(KIND[kind], name, ctx)
    return {"quota": f"{KIND[kind]}:{name}", "changed": True, "position": position}
