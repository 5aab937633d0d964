"""``/worker-templates``: list, read, create-or-update (PUT), delete. Seeding happens at start-up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.auth import Principal, Role, require
from api.etags import if_match, set_etag
from api.deps import Ctx, ReadYourWrites, get_container
from api.problems import ApiProblem
from api.schemas import PROBLEM_RESPONSES, Cursor, Limit, paged
from api.schemas.templates import (
    PositionOut,
    TemplateWrittenOut,
    WorkerTemplateIn,
    WorkerTemplateOut,
    WorkerTemplatePage,
)
from domain.errors import InvalidInput, NotFound
from domain.naming import MAX_NAME_LENGTH, NAME_PATTERN
from domain.worker_template import LicenseType, WorkerTemplateSpec
from projections.readmodels.templates import TemplateQueries
from projections.readmodels.workers import WorkerQueries

router = APIRouter(prefix="/worker-templates", tags=["worker-templates"], responses=PROBLEM_RESPONSES)

Readers = Annotated[Principal, Depends(require(Role.INSTRUCTOR, Role.USER, Role.SERVICE))]
Admin = Annotated[Principal, Depends(require())]
TemplateName = Annotated[str, Path(max_length=MAX_NAME_LENGTH, description="template name")]


def _queries(request: Request) -> TemplateQueries:
    return TemplateQueries(get_container(request).read_models)


@router.get("", response_model=WorkerTemplatePage, summary="List worker templates")
def list_templates(
    request: Request, _: Readers, __: ReadYourWrites,
    license_type: LicenseType | None = None, limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    page = paged(lambda: _queries(request).list(
        license_type=license_type.value if license_type else None, limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/{name}", response_model=WorkerTemplateOut,
            summary="Read one worker template (with the live workers that use it)")
def get_template(request: Request, response: Response, name: TemplateName, _: Readers,
                 __: ReadYourWrites) -> dict:
    doc = _queries(request).get(name)
    if doc is None:
        raise NotFound(f"worker template {name!r} not found")
    set_etag(response, int(doc["stream_version"]))  # If-Match this to edit it
    in_use_by = WorkerQueries(get_container(request).read_models).live_workers_of(name)
    return {**doc, "in_use_by": sorted(in_use_by)}


@router.put(
    "/{name}", response_model=TemplateWrittenOut, status_code=201,
    summary="Create (201) or update (202; 200 when nothing changed) a worker template",
    responses={200: {"model": TemplateWrittenOut}, 202: {"model": TemplateWrittenOut}},
)
def put_template(
    request: Request, response: Response, name: TemplateName, body: WorkerTemplateIn, ctx: Ctx, _: Admin,
) -> dict:
    if not NAME_PATTERN.match(name):
        raise InvalidInput("name", "must be lowercase letters, digits and '-', starting with a letter or digit")
    if body.name is not None and body.name != name:
        raise InvalidInput("name", f"the body names {body.name!r} but the path names {name!r}")
    spec = _spec(body, name)
    service = get_container(request).template_service
    expected = if_match(request, exists=_exists(service, name))
    written = service.put(spec, ctx, expected_version=expected)
    response.status_code = 201 if written.created else 202 if written.changed else 200
    return {"name": name, "created": written.created, "changed_fields": list(written.changed_fields),
            "position": written.position}


@router.delete("/{name}", response_model=PositionOut, status_code=202,
               summary="Remove a worker template (409 while a live worker uses it)")
def delete_template(request: Request, name: TemplateName, ctx: Ctx, _: Admin) -> dict:
    if not NAME_PATTERN.match(name):
        raise NotFound(f"worker template {name!r} not found")
    service = get_container(request).template_service
    expected = if_match(request, exists=_exists(service, name))
    return {"position": service.remove(name, ctx, reason="admin", expected_version=expected)}


def _exists(service: Any, name: str) -> bool:
    try:
        service.get(name)
    except NotFound:
        return False
    return True


def _spec(body: WorkerTemplateIn, name: str) -> WorkerTemplateSpec:
    try:
        return WorkerTemplateSpec.from_dict(body.spec_fields(name))
    except InvalidInput:
        raise
    except (TypeError, ValueError) as error:  # a shape the domain did not expect
        raise ApiProblem(422, "Invalid input", str(error), field="body") from None
