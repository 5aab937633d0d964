"""When no worker is ready by instantiation start: a booting worker ready by the slot's start.

A booking's request asks for a worker ready by ``ready_by`` (timeslot start minus the
instantiation lead). A booking made with little notice (a seat booked 20 minutes before
an exam, or one re-queued when its worker's boot failed) often finds only workers that
are still booting and will be ready *after* ``ready_by`` but *before* the slot starts.
Refusing them leaves the booking queued while later bookings (whose ``ready_by`` those
workers do make) take the room; the autoscaler, which had packed the booking onto that
worker (its packing accepts a worker ready later than the need when no launch could be
sooner), then finds it full and launches another worker, which is certainly late. So the
scheduler decides once more with the lead given up: the lab loses part of its
instantiation lead instead of waiting for a boot that starts only now.

Only a second pass: a worker ready by ``ready_by`` is always preferred (the strict request
is decided first), and ASAP requests (``ready_by`` is now) are unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain.placement.request import PlacementRequest


def ready_by_slot_start(request: PlacementRequest) -> PlacementRequest | None:
    """The same request accepting a worker ready by the slot's start; None when that would
    accept nothing more (ASAP, no lead, or a slot whose instantiation start has passed)."""
    if request.timeslot_start is None or request.instantiation_lead <= timedelta(0):
        return None
    relaxed = replace(request, instantiation_lead=timedelta(0))
    if relaxed.ready_by <= request.ready_by:
        return None
    return relaxed
