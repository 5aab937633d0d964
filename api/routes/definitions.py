"""``/definitions``: publish versions (lab YAML into the artifact store), list, read, deprecate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from api.auth import Principal, Role, require
from api.deps import Ctx, ReadYourWrites, get_container
from api.etags import set_etag
from api.problems import ApiProblem
from api.schemas import PROBLEM_RESPONSES, Cursor, Limit, paged
from api.schemas.definitions import (
    DefinitionIn,
    DefinitionOut,
    DefinitionPage,
    DefinitionVersionOut,
    DefinitionVersionPage,
    DeprecateIn,
    PublishedOut,
)
from api.schemas.templates import PositionOut
from domain.definition import LabletDefinition
from domain.errors import NotFound
from domain.lab_yaml import MAX_LAB_YAML_BYTES
from domain.naming import MAX_NAME_LENGTH
from domain.worker_template import LicenseType
from projections.readmodels.definitions import DefinitionQueries

router = APIRouter(prefix="/definitions", tags=["definitions"], responses=PROBLEM_RESPONSES)

Readers = Annotated[Principal, Depends(require(Role.INSTRUCTOR, Role.USER, Role.SERVICE, Role.GRADER))]
Admin = Annotated[Principal, Depends(require())]
DefinitionName = Annotated[str, Path(max_length=MAX_NAME_LENGTH)]
VersionText = Annotated[str, Path(max_length=50, description="semver MAJOR.MINOR.PATCH")]
# The YAML may be 1 MiB; JSON escaping can grow it (quotes, newlines), the other fields are small.
MAX_PUBLISH_BODY = 3 * MAX_LAB_YAML_BYTES


def _queries(request: Request) -> DefinitionQueries:
    return DefinitionQueries(get_container(request).read_models)


def _body_size_limit(request: Request) -> None:
    """Refuse an oversized body before reading it (the YAML limit itself is checked per field)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_PUBLISH_BODY:
        raise ApiProblem(413, "Payload too large",
                         f"request body is {length} bytes; lab_yaml may be at most {MAX_LAB_YAML_BYTES} bytes",
                         field="lab_yaml")


@router.post(
    "", response_model=PublishedOut, status_code=201, dependencies=[Depends(_body_size_limit)],
    summary="Publish a definition version (201; 200 with the existing version when nothing changed)",
    responses={200: {"model": PublishedOut}, 413: {"description": "lab_yaml larger than 1 MiB"}},
)
def publish(request: Request, response: Response, body: DefinitionIn, ctx: Ctx, _: Admin) -> dict:
    if body.lab_yaml is not None and len(body.lab_yaml.encode("utf-8")) > MAX_LAB_YAML_BYTES:
        raise ApiProblem(413, "Payload too large", f"lab_yaml: at most {MAX_LAB_YAML_BYTES} bytes (1 MiB)",
                         field="lab_yaml")
    published = get_container(request).definition_service.publish(
        body.spec_fields(), ctx, lab_yaml=body.lab_yaml, lab_artifact_uri=body.lab_artifact_uri
    )
    if not published.created:
        response.status_code = 200
    version = published.version
    return {"name": version.name, "version": version.version, "created": published.created,
            "lab_yaml_uri": version.lab_yaml_uri, "lab_yaml_sha256": version.lab_yaml_sha256,
            "node_count": version.node_count, "position": published.position}


@router.get("", response_model=DefinitionPage, summary="List definitions")
def list_definitions(
    request: Request, _: Readers, __: ReadYourWrites,
    name_prefix: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
    deprecated: bool | None = None,
    license: Annotated[LicenseType | None, Query(description="latest version accepts this licence")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    page = paged(lambda: _queries(request).list(
        name_prefix=name_prefix, deprecated=deprecated, license_type=license, limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/{name}", response_model=DefinitionOut, summary="Read a definition (with its latest version)")
def get_definition(request: Request, response: Response, name: DefinitionName, _: Readers,
                   __: ReadYourWrites) -> dict:
    found = _definition(request, name)
    definition = get_container(request).store.get(LabletDefinition.stream_id_for(name))
    set_etag(response, definition.version)  # changes with every publish or deprecation
    return found


@router.get("/{name}/versions", response_model=DefinitionVersionPage, summary="List a definition's versions")
def list_versions(
    request: Request, name: DefinitionName, _: Readers, __: ReadYourWrites, limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    _definition(request, name)
    page = paged(lambda: _queries(request).versions(name, limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/{name}/versions/{version}", response_model=DefinitionVersionOut, summary="Read one version")
def get_version(request: Request, name: DefinitionName, version: VersionText, _: Readers, __: ReadYourWrites) -> dict:
    doc = _queries(request).version(name, version)
    if doc is None:
        raise NotFound(f"definition {name!r} has no version {version!r}")
    return doc


@router.get(
    "/{name}/versions/{version}/lab.yaml", response_class=PlainTextResponse,
    summary="The lab YAML a version pins (text)",
    responses={200: {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
def get_lab_yaml(
    request: Request, name: DefinitionName, version: VersionText, _: Readers, __: ReadYourWrites,
) -> PlainTextResponse:
    text = get_container(request).definition_service.lab_yaml(name, version)
    return PlainTextResponse(text, media_type="application/yaml")


@router.post("/{name}/deprecate", response_model=PositionOut, status_code=202,
             summary="Deprecate: no new instances, no new versions")
def deprecate(request: Request, name: DefinitionName, ctx: Ctx, _: Admin, body: DeprecateIn | None = None) -> dict:
    reason = body.reason if body is not None else ""
    return {"position": get_container(request).definition_service.deprecate(name, ctx, reason=reason)}


def _definition(request: Request, name: str) -> dict:
    doc = _queries(request).get(name)
    if doc is None:
        raise NotFound(f"definition {name!r} not found")
    return doc
