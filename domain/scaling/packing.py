"""Bin packing over time: queued demand onto existing and planned workers.

Each bin is a worker (existing, or one the plan would restart, take back from draining,
or launch) with a private copy of its reservation ledger; an item fits when, at every
instant of its hold, the ledger plus the item stays within capacity and nodes, and the
worker is ready early enough. The packing is what sizes a scale-up for the whole demand
at once instead of one worker per request.

Order of preference for each item (needed earliest first, bigger first on ties):
1. a bin already in use (reservations or packed items): best fit, i.e. the one left
   fullest over the item's window, as the scheduler's bin-packing score would do;
2. an empty worker that exists or is booting (already paid for): least late, cheapest;
3. a new opening: take back a DRAINING worker, restart a STOPPED one, launch a template;
   least late first, then the lowest cost *per item* (hourly cost × the share of one
   worker the item takes in its dominant resource: a 2-node lab takes 1/10 of a
   20-node PERSONAL host but 1/24 of a 48-core ENTERPRISE one, so the latter is cheaper
   for it at the same hourly price), restart before launch on equal cost.
Options 2 and 3 share their ordering on purpose: a worker launched by one plan is an
empty booting worker in the next, and is chosen for the same items, so planning twice
never launches twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.resources import TOLERANCE, Resources
from domain.scaling.inputs import BOOTING_STATES, DemandItem, FleetWorker, TemplateOffer, WorkerState
from domain.scaling.timeline import Timeline, Usage
from domain.scaling.timing import ready_target

FLEET = "fleet"
CANCEL_DRAIN = "cancel_drain"
RESTART = "restart"
LAUNCH = "launch"


@dataclass
class Bin:
    """One worker's capacity over time during a packing (mutable scratch state)."""

    key: str
    origin: str
    template_name: str
    license_type: str
    nested_virt: bool
    capacity: Resources
    max_nodes: int
    hourly_cost: float
    earliest_ready: datetime
    boot: timedelta
    timeline: Timeline
    worker_id: str | None = None
    packed: list[DemandItem] = field(default_factory=list)
    first_need: datetime | None = None
    first_start: datetime | None = None  # the first lab's start (replacement lead)
    replacement_boot: timedelta | None = None  # set once the packing is done
    for_warm_minimum: bool = False
    _limits: Usage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._limits = self.limits

    @property
    def in_use(self) -> bool:
        return len(self.timeline) > 0

    @property
    def flexible(self) -> bool:
        """Its ready time is the plan's to choose (a restart or a launch not yet made)."""
        return self.origin in (RESTART, LAUNCH)

    def ready_at(self, margin: timedelta) -> datetime:
        """When the plan makes it ready: as late as its first need (and the lead for one
        replacement boot) allows, never before it can be."""
        if not self.flexible or self.first_need is None:
            return self.earliest_ready
        target = ready_target(self.first_need, self.first_start or self.first_need, margin, self.replacement_boot)
        return max(self.earliest_ready, target)

    def action_at(self, margin: timedelta) -> datetime:
        """When to restart or launch it so it is ready at ``ready_at``."""
        return self.ready_at(margin) - self.boot

    def fullness_if_fits(self, item: DemandItem, need: PackingNeed) -> float | None:
        """Highest share of any resource (or nodes) over the item's window once it is added;
        None when the item does not fit (licence, nested virt, or any instant over capacity)."""
        if not item.accepts_license(self.license_type) or (item.nested_virt and not self.nested_virt):
            return None
        peak = self.timeline.peak(need.start, need.end)
        usage = need.usage
        cap = self._limits
        share = 0.0
        for k in range(4):  # (the packing's innermost loop: one Python call per item and bin)
            total = peak[k] + usage[k]
            if total > cap[k] + TOLERANCE:
                return None
            if cap[k] > 0:
                fraction = total / cap[k]
                if fraction > share:
                    share = fraction
        return share

    def fits(self, item: DemandItem) -> bool:
        return self.fullness_if_fits(item, PackingNeed.of(item)) is not None

    @property
    def limits(self) -> Usage:
        c = self.capacity
        return (c.cpu_cores, c.memory_gb, c.storage_gb, float(self.max_nodes))

    def cost_per_item(self, item: DemandItem) -> float:
        """Hourly cost of the share of this worker the item takes (dominant resource)."""
        return self.hourly_cost * dominant_share(item, self.capacity, self.max_nodes)

    def add(self, item: DemandItem, need: datetime) -> None:
        self.timeline.add(item.instance_id, item.hold_start, item.hold_end, _usage(item.requirements, item.node_count))
        self.packed.append(item)
        if self.first_need is None or need < self.first_need:
            self.first_need = need
        start = max(item.timeslot_start or need, need)
        if self.first_start is None or start < self.first_start:
            self.first_start = start


def dominant_share(item: DemandItem, capacity: Resources, max_nodes: int) -> float:
    """The largest fraction of one worker's cpu, memory, storage or nodes the item needs."""
    r = item.requirements
    shares = [
        r.cpu_cores / capacity.cpu_cores if capacity.cpu_cores > 0 else 0.0,
        r.memory_gb / capacity.memory_gb if capacity.memory_gb > 0 else 0.0,
        r.storage_gb / capacity.storage_gb if capacity.storage_gb > 0 else 0.0,
        item.node_count / max_nodes if max_nodes > 0 else 0.0,
    ]
    return max(shares)


def _usage(resources: Resources, nodes: int) -> Usage:
    return (resources.cpu_cores, resources.memory_gb, resources.storage_gb, float(nodes))


@dataclass(frozen=True)
class PackingNeed:
    """An item's window and size as plain numbers (computed once per item)."""

    start: float
    end: float
    usage: Usage

    @classmethod
    def of(cls, item: DemandItem) -> PackingNeed:
        return cls(item.hold_start.timestamp(), item.hold_end.timestamp(), _usage(item.requirements, item.node_count))


def template_fits(template: TemplateOffer, item: DemandItem) -> bool:
    """Could one empty worker of this template ever host the item?"""
    return (
        item.accepts_license(template.license_type)
        and (template.nested_virt or not item.nested_virt)
        and item.node_count <= template.max_nodes
        and item.requirements.fits_within(template.capacity)
    )


def fleet_bin(
    worker: FleetWorker,
    now: datetime,
    templates: Mapping[str, TemplateOffer],
    *,
    origin: str = FLEET,
) -> Bin:
    """A bin for an existing worker, holding its reservations that have not ended."""
    template = templates.get(worker.template_name)
    if origin == RESTART:
        boot = template.restart if template else timedelta(minutes=5)
        earliest = now + boot
    elif worker.state in BOOTING_STATES:
        boot = timedelta(0)
        fallback = now + (template.startup if template else timedelta(minutes=20))
        earliest = max(now, worker.expected_ready_at or fallback)
    else:
        boot = timedelta(0)
        earliest = now
    # The reservations that have not ended; over windows that start at or after now they
    # peak as the whole ledger does, so the worker's cache serves every plan that sees it.
    now_s = now.timestamp()
    live = [span for span in worker.spans if span[2] > now_s]
    return Bin(
        key=worker.worker_id,
        origin=origin,
        template_name=worker.template_name,
        license_type=worker.license_type,
        nested_virt=template.nested_virt if template else True,
        capacity=worker.capacity,
        max_nodes=worker.max_nodes,
        hourly_cost=template.hourly_cost if template else 0.0,
        earliest_ready=earliest,
        boot=boot,
        timeline=Timeline.of_spans(live, shared=worker.peak_cache, shared_from=now_s),
        worker_id=worker.worker_id,
    )


def launch_bin(template: TemplateOffer, now: datetime, sequence: int) -> Bin:
    return Bin(
        key=f"new:{template.name}:{sequence:06d}",
        origin=LAUNCH,
        template_name=template.name,
        license_type=template.license_type,
        nested_virt=template.nested_virt,
        capacity=template.capacity,
        max_nodes=template.max_nodes,
        hourly_cost=template.hourly_cost,
        earliest_ready=now + template.startup,
        boot=template.startup,
        timeline=Timeline.of_spans([], shared=template.peak_cache),
    )


@dataclass
class Packing:
    """Result of packing: every bin used, and what could not be placed at all."""

    bins: list[Bin]
    unplaceable: list[DemandItem]
    lateness: dict[str, timedelta]  # instance id -> how late its bin is ready (only late ones)


def demand_order(items: Iterable[DemandItem], lead: timedelta) -> list[DemandItem]:
    """Earliest need first; bigger first among equal needs (first-fit decreasing); then id."""
    return sorted(
        items,
        key=lambda i: (
            i.needed_by(lead),
            -i.node_count,
            -i.requirements.cpu_cores,
            -i.requirements.memory_gb,
            -i.requirements.storage_gb,
            i.instance_id,
        ),
    )


def pack(
    now: datetime,
    items: Sequence[DemandItem],
    *,
    in_use: list[Bin],
    idle: list[Bin],
    openings: list[Bin],
    templates: Sequence[TemplateOffer],
    lead: timedelta,
    allow_launch: bool = True,
) -> Packing:
    """Place ``items`` (already in ``demand_order``) onto bins; open bins as needed.

    ``in_use`` are bins holding reservations, ``idle`` empty existing workers, ``openings``
    bins the plan may open (drain cancellations, restarts). The lists are consumed.
    """
    used = list(in_use)
    idle = list(idle)
    openings = list(openings)
    unplaceable: list[DemandItem] = []
    lateness: dict[str, timedelta] = {}
    sequence = 0
    opening_rank = {CANCEL_DRAIN: 0, RESTART: 1, LAUNCH: 2, FLEET: 1}

    for item in items:
        need = item.needed_by(lead)
        size = PackingNeed.of(item)
        fitting_templates = [t for t in templates if template_fits(t, item)]
        soonest_launch = min((now + t.startup for t in fitting_templates), default=None)
        # A bin ready after the need is still fine when no launch could be ready sooner;
        # when no template fits at all, any existing worker that fits will do.
        deadline = max(need, soonest_launch) if soonest_launch is not None else None

        def fullness(b: Bin) -> float | None:
            if deadline is not None and b.earliest_ready > deadline:
                return None
            return b.fullness_if_fits(item, size)

        def acceptable(b: Bin) -> bool:
            return fullness(b) is not None

        def late(b: Bin) -> timedelta:
            return max(timedelta(0), b.earliest_ready - need)

        chosen: Bin | None = None
        # fullness() inlined: this loop runs once per queued item and bin in use
        scored = [(f, b) for b in used
                  if (deadline is None or b.earliest_ready <= deadline)
                  and (f := b.fullness_if_fits(item, size)) is not None]
        if scored:
            chosen = min(scored, key=lambda fb: (-fb[0], fb[1].earliest_ready, fb[1].key))[1]
        if chosen is None:
            candidates = [b for b in idle if acceptable(b)]
            if candidates:
                chosen = min(candidates, key=lambda b: (late(b), b.cost_per_item(item), b.template_name,
                                                        b.earliest_ready, b.key))
                idle.remove(chosen)
                used.append(chosen)
        if chosen is None:
            options = [b for b in openings if acceptable(b)]
            if allow_launch:
                options += [launch_bin(t, now, sequence) for t in fitting_templates]
            if options:
                chosen = min(
                    options,
                    key=lambda b: (
                        late(b),
                        opening_rank[b.origin] != 0,  # a draining worker is already running
                        round(b.cost_per_item(item), 9),
                        opening_rank[b.origin],
                        b.template_name,
                        b.earliest_ready,
                        b.key,
                    ),
                )
                if chosen.origin == LAUNCH:
                    sequence += 1
                else:
                    openings.remove(chosen)
                used.append(chosen)
        if chosen is None:
            unplaceable.append(item)
            continue
        chosen.add(item, need)
        if chosen.earliest_ready > need:
            lateness[item.instance_id] = chosen.earliest_ready - need
    return Packing(bins=used, unplaceable=unplaceable, lateness=lateness)


def running_like(worker: FleetWorker) -> bool:
    return worker.state is WorkerState.RUNNING or worker.state in BOOTING_STATES
