"""Requesting a lablet instance: the command that creates one (PENDING)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.context import CommandContext
from domain.errors import InvalidInput
from domain.instance.states import InstanceState
from domain.instance.values import InstanceRequirements
from domain.timeslot import Timeslot

if TYPE_CHECKING:
    from domain.definition import DefinitionVersion
    from domain.instance import LabletInstance

if TYPE_CHECKING:  # the commands run on a LabletInstance: its events and state
    from domain.instance.events import InstanceEvents as _Instance
else:
    _Instance = object

S = InstanceState


class InstanceCreation(_Instance):
    """Creates an instance pinned to one definition version."""

    @classmethod
    def request(
        cls,
        definition: DefinitionVersion,
        owner_id: str,
        timeslot: Timeslot,
        ctx: CommandContext,
        *,
        reservation_id: str | None = None,
        instance_id: str | None = None,
    ) -> LabletInstance:
        """A new PENDING instance pinned to ``definition`` (validate the timeslot first)."""
        return cls.request_with(
            definition_name=definition.name,
            definition_version=definition.version,
            requirements=InstanceRequirements.from_definition(definition),
            grading_enabled=definition.grading_enabled,
            owner_id=owner_id,
            timeslot=timeslot,
            ctx=ctx,
            reservation_id=reservation_id,
            instance_id=instance_id,
        )

    @classmethod
    def request_with(
        cls,
        *,
        definition_name: str,
        definition_version: str,
        requirements: InstanceRequirements,
        grading_enabled: bool,
        owner_id: str,
        timeslot: Timeslot,
        ctx: CommandContext,
        reservation_id: str | None = None,
        instance_id: str | None = None,
    ) -> LabletInstance:
        if not isinstance(owner_id, str) or not owner_id:
            raise InvalidInput("owner_id", "must be a non-empty string")
        if instance_id is not None and not instance_id.startswith(f"{cls.stream_prefix()}-"):
            raise InvalidInput("instance_id", f"must start with '{cls.stream_prefix()}-' (category streams), "
                               f"got {instance_id!r}")
        if timeslot.start is not None and timeslot.end <= timeslot.start:
            raise InvalidInput("timeslot_end", "must be after timeslot_start")
        return cls._create_with(
            cls.InstanceRequested,
            ctx,
            id=instance_id,
            definition_name=definition_name,
            definition_version=definition_version,
            owner_id=owner_id,
            reservation_id=reservation_id,
            timeslot_start=timeslot.start,
            timeslot_end=timeslot.end,
            requirements=requirements.to_dict(),
            grading_enabled=grading_enabled,
        )
