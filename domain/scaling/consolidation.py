"""Consolidation (SPEC §5): re-pack movable future reservations onto fewer workers.

A reservation is **movable** when its lab has not started instantiating (the instance is
SCHEDULED, ``DemandItem.movable``) and its hold starts at least ``scale_up_margin`` (and
never less than 5 min) from now: a move never happens inside the instantiation lead.

Each worker's future cost is its billed hours from ``now`` if it follows its ledger and
stops across every gap longer than the break-even (``restart + margin + stop_min_saving``,
as the scale-down does), paying ``restart + margin`` for each start: ``future_hours``.
The consolidation tries to **empty one busy stretch of a worker** (a run of holds it
would stay up for) by moving each of its reservations onto the other worker where it
adds the fewest hours (it must fit at every instant in cpu, memory, storage and nodes,
accept the licence and nested virtualisation, and be up in time). The whole set of moves
is kept only when it saves at least ``consolidation_min_saving`` worker-hours and no
money: a move must pay for itself, so nothing moves back and forth (each kept set lowers
the total planned hours; a worker emptied by this plan receives nothing in it).

Bounded work per plan: stretches of at most ``MAX_STRETCH`` reservations, the smallest
``MAX_TRIES`` first (the ones worth emptying); targets are workers already holding
reservations (an empty one would cost a whole new stretch, never less).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.ledger import Reservation
from domain.resources import TOLERANCE
from domain.scaling.actions import MoveReservation
from domain.scaling.inputs import BOOTING_STATES, DemandItem, FleetWorker, ScalingSettings, TemplateOffer, WorkerState
from domain.scaling.timeline import Timeline, Usage
from domain.scaling.timing import DEFAULT_RESTART

MAX_STRETCH = 24
MAX_TRIES = 40
REPACK_WINDOW = timedelta(hours=2)
MOVE_PRICE = timedelta(minutes=3)  # each move must pay for itself on top of the set's minimum
MIN_GUARD = timedelta(minutes=5)
_UP_NOW = BOOTING_STATES | {WorkerState.RUNNING, WorkerState.DRAINING}
_RECEIVING = BOOTING_STATES | {WorkerState.RUNNING, WorkerState.STOPPED}


def _usage(r: Reservation) -> Usage:
    return (r.resources.cpu_cores, r.resources.memory_gb, r.resources.storage_gb, float(r.nodes))


def future_hours(spans: Sequence[tuple[float, float]], now: float, *, up_now: bool, restart_s: float,
                 margin_s: float, gap_s: float) -> float:
    """Billed hours from ``now`` of a worker holding ``spans`` (epoch seconds), stopping
    across gaps of ``gap_s`` or more and paying ``restart_s + margin_s`` for each start."""
    live = sorted((max(s, now), e) for s, e in spans if e > now)
    if not live:
        return 0.0
    stretches: list[list[float]] = []
    for s, e in live:
        if stretches and s - stretches[-1][1] < gap_s:
            stretches[-1][1] = max(stretches[-1][1], e)
        else:
            stretches.append([s, e])
    total = 0.0
    for i, (s, e) in enumerate(stretches):
        if i == 0 and up_now and s - now < gap_s:
            total += e - now
        else:
            total += restart_s + margin_s + (e - s)
    return total / 3600.0


@dataclass
class _Host:
    worker: FleetWorker
    template: TemplateOffer | None
    timeline: Timeline
    held: dict[str, Reservation]
    ready_at: datetime
    nested_virt: bool
    restart_s: float
    hourly_cost: float
    received: bool = False
    emptied: bool = False
    gave: bool = False  # gave bookings away in a re-pack

    @property
    def limits(self) -> Usage:
        c = self.worker.capacity
        return (c.cpu_cores, c.memory_gb, c.storage_gb, float(self.worker.max_nodes))

    def fits(self, r: Reservation) -> bool:
        peak = self.timeline.peak(r.hold_start.timestamp(), r.hold_end.timestamp())
        usage, limits = _usage(r), self.limits
        return all(peak[k] + usage[k] <= limits[k] + TOLERANCE for k in range(4))

    def fullness(self, r: Reservation) -> float:
        peak = self.timeline.peak(r.hold_start.timestamp(), r.hold_end.timestamp())
        return max((p / c for p, c in zip(peak, self.limits, strict=True) if c > 0), default=0.0)


@dataclass
class Consolidation:
    moves: list[MoveReservation]
    fleet: list[FleetWorker]  # the fleet with the moves applied (what the rest of the plan sees)
    saved_hours: float


def consolidate(
    now: datetime,
    fleet: Sequence[FleetWorker],
    templates: Sequence[TemplateOffer],
    demand: Sequence[DemandItem],
    settings: ScalingSettings,
) -> Consolidation:
    by_name = {t.name: t for t in templates}
    booked = {d.instance_id: d for d in demand if not d.queued}
    margin_s = settings.scale_up_margin.total_seconds()
    now_s = now.timestamp()
    guard = now + max(settings.scale_up_margin, MIN_GUARD)
    hosts = [_host(w, by_name.get(w.template_name), now) for w in fleet if w.state in _UP_NOW | _RECEIVING]

    def gap_s(host: _Host) -> float:
        return host.restart_s + margin_s + settings.stop_min_saving.total_seconds()

    def hours(host: _Host) -> float:
        return future_hours(host.timeline.spans(), now_s, up_now=host.worker.state in _UP_NOW,
                            restart_s=host.restart_s, margin_s=margin_s, gap_s=gap_s(host))

    def movable(host: _Host, r: Reservation) -> bool:
        item = booked.get(r.instance_id)
        return (item is not None and item.movable and r.hold_start >= guard
                and r.instance_id not in host.worker.active_instance_ids)

    candidates: list[tuple[int, float, str, _Host, list[Reservation]]] = []
    for host in hosts:
        for stretch in _stretches(list(host.held.values()), now, gap_s(host)):
            if len(stretch) <= MAX_STRETCH and all(movable(host, r) for r in stretch):
                weight = sum((r.hold_end - r.hold_start).total_seconds() for r in stretch)
                candidates.append((len(stretch), weight, host.worker.worker_id, host, stretch))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))

    moves: list[MoveReservation] = []
    saved = 0.0
    for _n, _w, _id, source, stretch in candidates[:MAX_TRIES]:
        if source.received or any(r.instance_id not in source.held for r in stretch):
            continue
        result = _try_empty(source, stretch, hosts, booked, hours, settings)
        if result is None:
            continue
        placed, saving = result
        saved += saving
        targets = sorted({t.worker.worker_id for _, t in placed})
        first = min(r.hold_start for r in stretch)
        last = max(r.hold_end for r in stretch)
        reason = (
            f"consolidation: {len(placed)} booking(s) of {source.worker.worker_id} held "
            f"{first.isoformat()} to {last.isoformat()} fit on {', '.join(targets)}; moving them saves "
            f"{saving:.2f} worker-hour(s) in this plan (at least "
            f"{(settings.consolidation_min_saving + MOVE_PRICE * len(placed)).total_seconds() / 3600:g} needed to move)"
        )
        for r, target in placed:
            moves.append(MoveReservation(instance_id=r.instance_id, from_worker_id=source.worker.worker_id,
                                         to_worker_id=target.worker.worker_id, hold_start=r.hold_start,
                                         saves_hours=round(saving, 4), reason=reason))
    repacked = _repack(now, hosts, booked, hours, movable, settings)
    if repacked is not None:
        placed_moves, saving = repacked
        saved += saving
        for r, source, target in placed_moves:
            moves.append(MoveReservation(
                instance_id=r.instance_id, from_worker_id=source.worker.worker_id,
                to_worker_id=target.worker.worker_id, hold_start=r.hold_start, saves_hours=round(saving, 4),
                reason=(f"consolidation: re-packing the {len(placed_moves)} booking(s) that start before "
                        f"{(now + REPACK_WINDOW).isoformat()} and can still move, each onto the worker where it "
                        f"adds the fewest hours, saves {saving:.2f} worker-hour(s) in this plan"),
            ))
    if not moves:
        return Consolidation([], list(fleet), 0.0)
    changed = {h.worker.worker_id: h for h in hosts if h.received or h.emptied or h.gave}
    new_fleet = [
        replace(w, reservations=tuple(changed[w.worker_id].held.values())) if w.worker_id in changed else w
        for w in fleet
    ]
    return Consolidation(moves, new_fleet, saved)


def _repack(
    now: datetime,
    hosts: list[_Host],
    booked: dict[str, DemandItem],
    cost: Callable[[_Host], float],
    movable: Callable[[_Host, Reservation], bool],
    settings: ScalingSettings,
) -> tuple[list[tuple[Reservation, _Host, _Host]], float] | None:
    """Take every movable booking starting within ``REPACK_WINDOW`` off its worker and put
    them back in start order (biggest first), each where it adds the fewest hours (ties:
    the fullest, then where it was): the offline planner's rule, over the real fleet.
    Kept only when it saves ``consolidation_min_saving`` plus ``MOVE_PRICE`` per move."""
    limit = now + REPACK_WINDOW
    taken: list[tuple[Reservation, _Host]] = [
        (r, h) for h in hosts if not h.emptied and not h.received
        for r in h.held.values() if r.hold_start < limit and movable(h, r)
    ]
    if not taken:
        return None
    before = {id(h): (h, cost(h)) for h in hosts}
    for r, h in taken:
        h.timeline.remove(r.instance_id)
        del h.held[r.instance_id]
    now_cost = {id(h): cost(h) for h in hosts}
    order = sorted(taken, key=lambda rh: (rh[0].hold_start, -rh[0].nodes, -rh[0].resources.cpu_cores,
                                          rh[0].instance_id))
    placed: list[tuple[Reservation, _Host, _Host]] = []
    for index, (r, origin) in enumerate(order):
        item = booked[r.instance_id]
        best: tuple[float, float, bool, str] | None = None
        chosen: _Host | None = None
        for host in hosts:
            if host.emptied or host.worker.state not in _RECEIVING or (host is not origin and not host.held):
                continue
            if not item.accepts_license(host.worker.license_type) or (item.nested_virt and not host.nested_virt):
                continue
            if host.ready_at > r.hold_start or not host.fits(r):
                continue
            host.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
            extra = cost(host) - now_cost[id(host)]
            host.timeline.remove(r.instance_id)
            score = (round(extra * host.hourly_cost, 9), -host.fullness(r), host is not origin, host.worker.worker_id)
            if best is None or score < best:
                best, chosen = score, host
        if chosen is None:
            # Not even its own worker has room now: bookings put back before it took that
            # room. This re-pack would overbook; leave everything where it was.
            _undo_repack(placed, order[index:])
            return None
        chosen.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
        chosen.held[r.instance_id] = r
        now_cost[id(chosen)] = cost(chosen)
        placed.append((r, origin, chosen))
    moved = [(r, o, t) for r, o, t in placed if t is not o]
    before_h = sum(b for _, b in before.values())

    def needed(n: int) -> float:
        return (settings.consolidation_min_saving + MOVE_PRICE * n).total_seconds() / 3600

    # Fewest moves for the saving: put back, latest first, every move the saving does not need.
    for entry in sorted(moved, key=lambda m: (m[0].hold_start, m[0].instance_id), reverse=True):
        r, origin, target = entry
        target.timeline.remove(r.instance_id)
        del target.held[r.instance_id]
        if origin.fits(r):
            origin.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
            origin.held[r.instance_id] = r
            trial = dict(now_cost)
            trial[id(origin)], trial[id(target)] = cost(origin), cost(target)
            if before_h - sum(trial.values()) >= needed(len(moved) - 1):
                now_cost = trial
                moved.remove(entry)
                placed[placed.index(entry)] = (r, origin, origin)
                continue
            origin.timeline.remove(r.instance_id)
            del origin.held[r.instance_id]
        target.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
        target.held[r.instance_id] = r
    after_h = sum(now_cost.values())
    money_before = sum(h.hourly_cost * b for h, b in before.values())
    money_after = sum(h.hourly_cost * now_cost[k] for k, (h, _) in before.items())
    saving = before_h - after_h
    if moved and saving >= needed(len(moved)) and money_after <= money_before + 1e-9:
        for _, origin, target in moved:
            target.received = True
            origin.gave = True
        return moved, saving
    _undo_repack(placed, [])
    return None


def _undo_repack(placed: list[tuple[Reservation, _Host, _Host]], pending: list[tuple[Reservation, _Host]]) -> None:
    """Everything back where it was: placed bookings off their new host, all onto their origin."""
    for r, _origin, target in placed:
        target.timeline.remove(r.instance_id)
        del target.held[r.instance_id]
    for r, origin in [(r, o) for r, o, _ in placed] + pending:
        origin.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
        origin.held[r.instance_id] = r


def _host(worker: FleetWorker, template: TemplateOffer | None, now: datetime) -> _Host:
    restart = template.restart if template else DEFAULT_RESTART
    if worker.state is WorkerState.STOPPED:
        ready = now + restart
    elif worker.state in BOOTING_STATES:
        ready = max(now, worker.expected_ready_at or now)
    else:
        ready = now
    held = {r.instance_id: r for r in worker.reservations if r.hold_end > now}
    timeline = Timeline()
    for r in held.values():
        timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
    return _Host(worker, template, timeline, held, ready, template.nested_virt if template else True,
                 restart.total_seconds(), template.hourly_cost if template else 0.0)


def _stretches(reservations: list[Reservation], now: datetime, gap_s: float) -> list[list[Reservation]]:
    """The runs of holds a worker stays up for (gaps shorter than ``gap_s`` bridged)."""
    result: list[list[Reservation]] = []
    reach: datetime | None = None
    for r in sorted(reservations, key=lambda r: (r.hold_start, r.instance_id)):
        if r.hold_end <= now:
            continue
        if reach is not None and (r.hold_start - reach).total_seconds() < gap_s:
            result[-1].append(r)
            reach = max(reach, r.hold_end)
        else:
            result.append([r])
            reach = r.hold_end
    return result


def _try_empty(
    source: _Host,
    stretch: list[Reservation],
    hosts: list[_Host],
    booked: dict[str, DemandItem],
    cost: Callable[[_Host], float],
    settings: ScalingSettings,
) -> tuple[list[tuple[Reservation, _Host]], float] | None:
    """Move every reservation of ``stretch`` off ``source``; keep it only if it pays."""
    touched: dict[int, tuple[_Host, float]] = {id(source): (source, cost(source))}
    placed: list[tuple[Reservation, _Host]] = []
    for r in stretch:
        source.timeline.remove(r.instance_id)
        del source.held[r.instance_id]
    ok = True
    for r in sorted(stretch, key=lambda r: (-r.nodes, -r.resources.cpu_cores, r.hold_start, r.instance_id)):
        item = booked[r.instance_id]
        best: tuple[float, float, str] | None = None
        chosen: _Host | None = None
        for host in hosts:
            if host is source or host.emptied or not host.held or host.worker.state not in _RECEIVING:
                continue
            if not item.accepts_license(host.worker.license_type) or (item.nested_virt and not host.nested_virt):
                continue
            if host.ready_at > r.hold_start or not host.fits(r):
                continue
            before = touched[id(host)][1] if id(host) in touched else cost(host)
            host.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
            extra = cost(host) - before
            host.timeline.remove(r.instance_id)
            score = (round(extra * host.hourly_cost, 9), -host.fullness(r), host.worker.worker_id)
            if best is None or score < best:
                best, chosen = score, host
        if chosen is None:
            ok = False
            break
        touched.setdefault(id(chosen), (chosen, cost(chosen)))
        chosen.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
        chosen.held[r.instance_id] = r
        placed.append((r, chosen))
    if ok:
        before_h = sum(h_before for _, h_before in touched.values())
        after_h = sum(cost(h) for h, _ in touched.values())
        before_cost = sum(h.hourly_cost * b for h, b in touched.values())
        after_cost = sum(h.hourly_cost * cost(h) for h, _ in touched.values())
        saving = before_h - after_h
        # Each move must pay for itself (as in a re-pack): without its price, emptying the
        # worker that just received a booking could send that booking straight back.
        needed = (settings.consolidation_min_saving + MOVE_PRICE * len(placed)).total_seconds() / 3600
        if saving >= needed and after_cost <= before_cost + 1e-9:
            source.emptied = True
            for _, target in placed:
                target.received = True
            return placed, saving
    # undo
    for r, target in placed:
        target.timeline.remove(r.instance_id)
        del target.held[r.instance_id]
    for r in stretch:
        source.timeline.add(r.instance_id, r.hold_start, r.hold_end, _usage(r))
        source.held[r.instance_id] = r
    return None
