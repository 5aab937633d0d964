"""LabletInstance (SPEC §3.3): one booked lab, from request to termination.

The allowed transitions are data (``TRANSITIONS``, the SPEC table); every command names the
state it moves to and is refused with ``IllegalTransition`` unless the table allows it from
the current state. A few commands are idempotent when repeated in the state they lead to
(``schedule`` with the same decision, ``start_instantiation`` of the running attempt,
``login`` while RUNNING, ``request_stop`` while STOPPING), because processors deliver
at least once; they then record nothing.

One file per part of its life:

- ``states``: the states and the transition table;
- ``values``: what an instance asks of a worker (``InstanceRequirements``), the grader's ``ScoreReport``;
- ``events``: every event and the state it sets (plus the reads of that state);
- ``creation``, ``placement``, ``instantiation``, ``use``, ``teardown``: the commands, by phase.

The aggregate is assembled here, in this module, on purpose: the library redefines the
events of ``InstanceEvents`` on ``LabletInstance``, so the topics stored with them stay
``domain.instance:LabletInstance.<Event>`` whatever file the code lives in.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.instance.creation import InstanceCreation
from domain.instance.events import InstanceEvents
from domain.instance.instantiation import InstantiationCommands
from domain.instance.placement import PlacementCommands
from domain.instance.states import (
    CAPACITY_HOLDING_STATES,
    FINISHED_STATES,
    MAX_INSTANTIATION_RETRIES,
    TERMINATION_REASONS,
    TRANSITIONS,
    InstanceState,
    expected_sources,
)
from domain.instance.teardown import TeardownCommands
from domain.instance.use import HoldEnded, UseCommands
from domain.instance.values import InstanceRequirements, ScoreReport

S = InstanceState


class LabletInstance(
    InstanceCreation, PlacementCommands, InstantiationCommands, UseCommands, TeardownCommands, InstanceEvents
):
    """One lab booking; see ``TRANSITIONS`` for its life."""


__all__: Sequence[str] = (
    "CAPACITY_HOLDING_STATES", "FINISHED_STATES", "HoldEnded", "InstanceRequirements", "InstanceState",
    "LabletInstance", "MAX_INSTANTIATION_RETRIES", "S", "ScoreReport", "TERMINATION_REASONS", "TRANSITIONS",
    "expected_sources",
)
