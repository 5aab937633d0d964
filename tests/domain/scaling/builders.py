"""Small builders for scaling tests: readable fleets, templates and demand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from domain.ledger import Reservation
from domain.resources import Resources
from domain.scaling import (
    DemandItem,
    FleetWorker,
    LaunchWorker,
    RestartWorker,
    ScalingPlan,
    TemplateOffer,
    WorkerState,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LEAD = timedelta(minutes=15)

SAMPLE_NEED = Resources(4, 8, 10)  # the 2-node sample lab


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def personal(name: str = "personal-standard", *, cost: float = 4.0, startup: int = 20, restart: int = 5,
             nested_virt: bool = True, drain_hours: float = 4) -> TemplateOffer:
    return TemplateOffer(
        name=name,
        capacity=Resources(48, 192, 500),
        max_nodes=20,
        license_type="PERSONAL",
        startup_minutes=startup,
        restart_minutes=restart,
        hourly_cost=cost,
        drain_timeout_hours=drain_hours,
        nested_virt=nested_virt,
    )


def enterprise(name: str = "enterprise-large", *, cost: float = 9.0, startup: int = 20) -> TemplateOffer:
    return TemplateOffer(
        name=name,
        capacity=Resources(96, 384, 1000),
        max_nodes=500,
        license_type="ENTERPRISE",
        startup_minutes=startup,
        restart_minutes=5,
        hourly_cost=cost,
    )


def booking(instance_id: str, start_min: float, duration_min: float = 60, *, need: Resources = SAMPLE_NEED,
            nodes: int = 2, affinity: Iterable[str] = (), queued: bool = True, asap: bool = False,
            nested_virt: bool = False, teardown: float = 30) -> DemandItem:
    start = at(start_min)
    return DemandItem(
        instance_id=instance_id,
        requirements=need,
        node_count=nodes,
        license_affinity=tuple(affinity),
        hold_start=start if asap else start - LEAD,
        hold_end=start + timedelta(minutes=duration_min + teardown),
        timeslot_start=None if asap else start,
        queued=queued,
        nested_virt=nested_virt,
    )


def reservation_of(item: DemandItem) -> Reservation:
    return Reservation(item.instance_id, item.requirements, item.node_count, {}, item.hold_start, item.hold_end)


def worker(worker_id: str, state: WorkerState | str = WorkerState.RUNNING, *, template: TemplateOffer | None = None,
           since: datetime | None = None, ready_at: datetime | None = None,
           holds: Iterable[DemandItem] = (), active: Iterable[str] = (),
           deadline: datetime | None = None) -> FleetWorker:
    template = template or personal()
    return FleetWorker(
        worker_id=worker_id,
        template_name=template.name,
        state=WorkerState(state),
        expected_ready_at=ready_at,
        state_since=since or at(-120),
        reservations=tuple(reservation_of(h) for h in holds),
        active_instance_ids=tuple(active),
        capacity=template.capacity,
        max_nodes=template.max_nodes,
        license_type=template.license_type,
        drain_deadline=deadline,
    )


def apply_scale_up(plan: ScalingPlan, fleet: list[FleetWorker], templates: Iterable[TemplateOffer],
                   *, include_deferred: bool = False, prefix: str = "zz-new") -> list[FleetWorker]:
    """The fleet after the plan's restarts and launches (new workers PENDING, nothing placed yet)."""
    by_name = {t.name: t for t in templates}
    now = plan.now
    restarted = {a.worker_id for a in plan.restarts}
    cancelled = {a.worker_id for a in plan.actions if type(a).__name__ == "CancelDrain"}
    result = []
    for w in fleet:
        if w.worker_id in restarted:
            t = by_name[w.template_name]
            w = FleetWorker(w.worker_id, w.template_name, WorkerState.PROVISIONING, now + t.restart, now,
                            w.reservations, w.active_instance_ids, w.capacity, w.max_nodes, w.license_type)
        elif w.worker_id in cancelled:
            w = FleetWorker(w.worker_id, w.template_name, WorkerState.RUNNING, None, now,
                            w.reservations, w.active_instance_ids, w.capacity, w.max_nodes, w.license_type)
        result.append(w)
    n = 0
    launches: list[tuple[str, int, datetime]] = [(a.template, a.count, now) for a in plan.launches]
    if include_deferred:
        for d in plan.deferred:
            if d.restart_worker_id is None:
                launches.append((d.template, d.count, d.launch_at))
    for template_name, count, launch_at in launches:
        t = by_name[template_name]
        for _ in range(count):
            n += 1
            result.append(
                FleetWorker(f"{prefix}-{n:05d}", t.name, WorkerState.PENDING, launch_at + t.startup, now, (), (),
                            t.capacity, t.max_nodes, t.license_type)
            )
    return result


def launched(plan: ScalingPlan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in plan.actions:
        if isinstance(a, LaunchWorker):
            counts[a.template] = counts.get(a.template, 0) + a.count
    return counts


def kinds(plan: ScalingPlan) -> list[str]:
    return [type(a).__name__ for a in plan.actions]


