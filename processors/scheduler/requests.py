"""An instance's placement request over a given hold window (the scheduler's, a class's, a move's)."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.context import CommandContext
from domain.instance import LabletInstance
from domain.placement import PlacementRequest
from domain.worker import Worker


def placement_request(
    instance: LabletInstance, hold_start: datetime, hold_end: datetime, lead: timedelta
) -> PlacementRequest:
    req = instance.requirements
    return PlacementRequest(
        instance_id=instance.id,
        requirements=req.resources,
        node_count=req.node_count,
        license_affinity=frozenset(req.license_affinity),
        nested_virt=req.nested_virt,
        ami_name_pattern=req.ami_name_pattern,
        ami_min_version=req.ami_min_version,
        port_names=tuple(req.port_names),
        hold_start=hold_start,
        hold_end=hold_end,
        timeslot_start=instance.timeslot_start,
        instantiation_lead=lead,
    )


def reserve_request(worker: Worker, request: PlacementRequest, ctx: CommandContext) -> dict[str, int]:
    """Hold what ``request`` asks for on ``worker`` over its hold window; the allocated ports."""
    return worker.reserve(
        request.instance_id, request.requirements, request.node_count, request.port_names,
        request.hold_start, request.hold_end, ctx, license_affinity=sorted(request.license_affinity) or None,
    )
