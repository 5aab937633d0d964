"""``/scaling/decisions`` (the scaling audit) and ``/fleet/cost`` (worker-hours and cost so far)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from api.auth import Principal, Role, require
from api.deps import ReadYourWrites, get_container
from api.schemas import Cursor, Limit, paged
from domain.errors import NotFound
from domain.naming import MAX_NAME_LENGTH
from projections.readmodels.fleet_cost import FleetCostQueries
from projections.readmodels.scaling import ScalingQueries

router = APIRouter(tags=["scaling"])

Readers = Annotated[Principal, Depends(require(Role.INSTRUCTOR))]


class ScalingDecisionOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    decision_id: str
    position: int
    at: Any
    policy: str
    reason: str
    actions: list[dict[str, Any]]
    deferred: list[dict[str, Any]]
    unplaceable: list[str]
    next_decision_at: str | None
    inputs: dict[str, Any]
    launched_worker_ids: list[str]
    rejected: list[dict[str, Any]]


class ScalingDecisionPage(BaseModel):
    items: list[ScalingDecisionOut]
    next_cursor: str | None


class FleetCostOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: str
    workers: int
    worker_hours: float
    cost: float
    idle_share: float
    per_template: dict[str, dict[str, Any]]
    lower_bound: dict[str, Any]  # valid whatever the placement (domain/scaling/instant_bound.py)
    lower_bound_worker_hours: float
    waste_ratio: float | None  # worker_hours / lower_bound_worker_hours
    packed_as_placed: dict[str, dict[str, Any]]  # per template, the holds as placed packed perfectly: no bound


@router.get("/scaling/decisions", response_model=ScalingDecisionPage,
            summary="Autoscaler decisions, newest first, with inputs, actions and reasons")
def list_decisions(
    request: Request, _: Readers, __: ReadYourWrites,
    has_actions: Annotated[bool | None, Query(description="true: only decisions that acted")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> dict:
    queries = ScalingQueries(get_container(request).read_models)
    page = paged(lambda: queries.list(has_actions=has_actions, limit=limit, cursor=cursor))
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/scaling/decisions/{decision_id}", response_model=ScalingDecisionOut, summary="One scaling decision")
def get_decision(
    request: Request, decision_id: Annotated[str, Path(max_length=100)], _: Readers, __: ReadYourWrites,
) -> dict:
    doc = ScalingQueries(get_container(request).read_models).get(decision_id)
    if doc is None:
        raise NotFound(f"scaling decision {decision_id!r} not found")
    return doc


@router.get("/fleet/cost", response_model=FleetCostOut,
            summary="Worker-hours, cost and idle share so far, per template, with the lower bound")
def fleet_cost(
    request: Request, _: Readers, __: ReadYourWrites,
    template: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)] = None,
) -> dict:
    container = get_container(request)
    return FleetCostQueries(container.read_models).report(container.clock.now(), template_name=template)
