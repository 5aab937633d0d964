"""Consolidation carried out: a booking moves with its window, gets ports on the new worker,
and the move is an event with its reason on the instance's stream (SPEC §5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.context import CommandContext
from domain.errors import IllegalTransition
from domain.instance import InstanceState, LabletInstance
from domain.worker import WorkerState
from domain.worker_template import WorkerTemplate
from processors.autoscaler import Autoscaler
from tests.scheduler.support import T0, new_instance, new_worker, template

SPEC = template(cpu=8, memory=32)  # 4 labs of 2 cores; ports 2000-2009


def booked(store: EventStore, worker_id: str, start_minutes: int, minutes: int) -> LabletInstance:
    instance = new_instance(T0 + timedelta(minutes=start_minutes), minutes)
    worker = store.get(worker_id)
    ctx = CommandContext(at=T0, actor="system:scheduler")
    start = instance.timeslot_start - timedelta(minutes=15)
    end = instance.timeslot_end + timedelta(minutes=30)
    ports = worker.reserve(instance.id, instance.requirements.resources, instance.requirements.node_count,
                           list(instance.requirements.port_names), start, end, ctx)
    instance.schedule(worker_id, ports, start, end, None, ctx)
    store.save(worker, instance)
    return instance


def test_a_booking_alone_on_a_worker_moves_next_to_the_others_and_that_worker_stops(
    store: EventStore, clock: VirtualClock,
) -> None:
    store.save(WorkerTemplate.register(SPEC, CommandContext(at=T0, actor="system:seed")))
    busy, lonely = new_worker(SPEC), new_worker(SPEC)
    store.save(busy, lonely)
    day = [booked(store, busy.id, 30 + 60 * k, 60) for k in range(6)]  # busy all day, one lab at a time
    alone = booked(store, lonely.id, 240, 60)  # 12:00: the only thing keeping `lonely` up
    previous_ports = dict(store.get(alone.id).allocated_ports)

    decision = Autoscaler(store, clock).tick(force=True)

    kinds = [a.kind for a in decision.plan.actions]
    assert kinds[0] == "MoveReservation" and "StopWorker" in kinds
    assert decision.rejected == []
    moved = store.get(alone.id)
    assert moved.state is InstanceState.SCHEDULED and moved.worker_id == busy.id
    assert (moved.hold_start, moved.hold_end) == (alone.hold_start, alone.hold_end)  # the booked window stays
    held = store.get(busy.id).ledger.get(alone.id)
    assert held is not None and held.ports == moved.allocated_ports  # ports allocated again, on the new worker
    overlapping = {p for r in store.get(busy.id).ledger.overlapping(held.hold_start, held.hold_end)
                   if r.instance_id != alone.id for p in r.ports.values()}
    assert not overlapping & set(moved.allocated_ports.values())
    assert store.get(lonely.id).ledger.get(alone.id) is None
    assert store.get(lonely.id).state is WorkerState.STOPPING
    events = [s.event for s in store.read_stream(alone.id)]
    move = next(e for e in events if isinstance(e, LabletInstance.InstanceMoved))
    assert move.previous_worker_id == lonely.id and move.previous_ports == previous_ports
    assert move.reason.startswith("consolidation") and move.decision_id == decision.decision_id
    assert all(store.get(i.id).worker_id == busy.id for i in day)


def test_an_instance_never_moves_inside_its_instantiation_lead_or_once_instantiating() -> None:
    worker_a, worker_b = new_worker(SPEC), new_worker(SPEC)
    instance = new_instance(T0 + timedelta(minutes=60), 60)
    ctx = CommandContext(at=T0, actor="system:scheduler")
    instance.schedule(worker_a.id, {"serial_1": 2000, "vnc_1": 2001}, T0 + timedelta(minutes=45),
                      T0 + timedelta(minutes=150), None, ctx)
    late = CommandContext(at=T0 + timedelta(minutes=45), actor="system:autoscaler")
    with pytest.raises(IllegalTransition):
        instance.move(worker_b.id, {"serial_1": 2000, "vnc_1": 2001}, "consolidation", None, late)
    instance.start_instantiation(1, late)
    with pytest.raises(IllegalTransition):
        instance.move(worker_b.id, {"serial_1": 2000, "vnc_1": 2001}, "consolidation", None, ctx)
