"""The autoscaler's inputs, taken from a replica of the log at one instant.

- fleet: every worker that is not TERMINATED/FAILED, with its reservation ledger and the
  instances living on it (INSTANTIATING … STOPPED: a lab being built, running, graded or
  stopped-but-restartable keeps its worker up, even past its hold);
- templates: every template not removed;
- demand: queued (PENDING) instances with the hold window the scheduler will ask for
  (``domain.timeslot.hold_window``, the same lead and teardown margin), and booked
  instances whose hold has not ended (``queued=False``, for the summary).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidInput
from domain.instance import InstanceState, LabletInstance
from domain.scaling import DemandItem, FleetWorker, TemplateOffer
from domain.scaling.inputs import GONE_STATES
from domain.timeslot import hold_window
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplate

S = InstanceState
LIVING_ON_WORKER = frozenset({S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.GRADING, S.STOPPING, S.STOPPED})


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    fleet: list[FleetWorker]
    templates: list[TemplateOffer]
    demand: list[DemandItem]
    finished: list[str]  # aggregates that no decision will need again (the replica may forget them)


def take_snapshot(
    now: datetime,
    workers: Iterable[Worker],
    templates: Iterable[WorkerTemplate],
    instances: Iterable[LabletInstance],
    *,
    instantiation_lead: timedelta,
    teardown_margin: timedelta,
) -> Snapshot:
    finished: list[str] = []
    demand: list[DemandItem] = []
    living: dict[str, list[str]] = {}
    for instance in instances:
        if not instance.is_live:
            finished.append(instance.id)
            continue
        item = _demand_item(instance, now, instantiation_lead, teardown_margin)
        if item is not None:
            demand.append(item)
        if instance.worker_id and instance.state in LIVING_ON_WORKER:
            living.setdefault(instance.worker_id, []).append(instance.id)
    fleet: list[FleetWorker] = []
    for worker in workers:
        if worker.state in GONE_STATES:
            if worker.state is WorkerState.TERMINATED:
                finished.append(worker.id)
            continue
        fleet.append(fleet_worker(worker, living.get(worker.id, ()), now))
    offers = [TemplateOffer.from_spec(t.spec) for t in templates if not t.removed]
    return Snapshot(now, fleet, offers, demand, finished)


def fleet_worker(worker: Worker, living: Iterable[str], now: datetime) -> FleetWorker:
    spec = worker.template
    return FleetWorker(
        worker_id=worker.id,
        template_name=worker.template_name,
        state=worker.state.value,
        expected_ready_at=worker.expected_ready_at,
        state_since=worker.entered_at(worker.state) or now,
        reservations=tuple(worker.reservations()),
        active_instance_ids=tuple(living),
        capacity=spec.capacity,
        max_nodes=spec.node_limit,
        license_type=spec.license_type.value,
        drain_deadline=worker.drain_deadline,
    )


def _demand_item(
    instance: LabletInstance, now: datetime, lead: timedelta, margin: timedelta
) -> DemandItem | None:
    requirements = instance.requirements
    if instance.state is S.PENDING:
        try:
            start, end = hold_window(instance.timeslot_start, instance.timeslot_end, now, lead, margin)
        except InvalidInput:
            return None  # its slot has passed: nothing to scale for
        queued = True
    elif instance.holds_capacity and instance.hold_start and instance.hold_end and instance.hold_end > now:
        start, end = instance.hold_start, instance.hold_end
        queued = False
    else:
        return None
    return DemandItem(
        instance_id=instance.id,
        requirements=requirements.resources,
        node_count=requirements.node_count,
        license_affinity=tuple(requirements.license_affinity),
        hold_start=start,
        hold_end=end,
        timeslot_start=instance.timeslot_start,  # a past slot needs capacity at hold_start (now)
        queued=queued,
        nested_virt=requirements.nested_virt,
        movable=instance.state is S.SCHEDULED,
    )
