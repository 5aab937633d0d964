"""The autoscaler's snapshot kept up to date from the events it follows.

``take_snapshot`` builds the inputs of a plan from every live instance and every worker:
one demand item per instance and one ``FleetWorker`` per worker (its whole ledger sorted),
on every plan. ``SnapshotView`` keeps those per aggregate and rebuilds one only when its
aggregate changed (``refresh``, fed with the streams each catch-up touched) or when the
clock made it stale:

- a queued instance's window is clamped to ``now`` once ``timeslot_start - lead`` has
  passed (and always for ASAP): from then on it is recomputed at each plan;
- a booked instance counts until its ``hold_end``;
- a worker without a recorded entry into its state uses ``now`` as ``state_since``.

``snapshot(now)`` returns exactly what ``take_snapshot`` returns for the same aggregates
(same items, same order); the autoscaler compares the two every
``AutoscalerSettings.full_check_every`` plans, and tests/autoscaler/test_snapshot_view.py
compares them after random event streams. The rules above mirror ``_demand_item`` and
``fleet_worker`` in ``snapshot.py``: change them together.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.instance import LabletInstance
from domain.scaling import DemandItem, FleetWorker, TemplateOffer
from domain.scaling.inputs import GONE_STATES
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplate
from processors.autoscaler.snapshot import LIVING_ON_WORKER, S, Snapshot, _demand_item, fleet_worker


@dataclass
class _Cached:
    """A derived input, computed at ``at`` and valid while ``at <= now < until``."""

    value: Any
    at: datetime
    until: datetime | None  # None: until its aggregate changes

    def valid_at(self, now: datetime) -> bool:
        return self.at <= now and (self.until is None or now < self.until)


class SnapshotView:
    def __init__(self, *, instantiation_lead: timedelta, teardown_margin: timedelta) -> None:
        self.lead = instantiation_lead
        self.margin = teardown_margin
        # instances
        self._live_ids: list[str] = []  # sorted
        self._instances: dict[str, LabletInstance] = {}  # live ones
        self._demand: dict[str, _Cached] = {}
        self._finished: set[str] = set()  # instances no longer live, until retired
        self._lives_on: dict[str, str] = {}  # instance -> the worker it lives on
        self._living: dict[str, set[str]] = {}  # worker -> instances living on it
        # workers
        self._worker_ids: list[str] = []  # sorted, not gone
        self._workers: dict[str, Worker] = {}
        self._fleet: dict[str, _Cached] = {}
        self._terminated: set[str] = set()
        # templates
        self._templates: dict[str, WorkerTemplate] = {}
        self._offers: list[TemplateOffer] | None = None

    # -- keeping it current --------------------------------------------------------------
    def refresh(self, aggregate_id: str, aggregate: Any | None) -> None:
        """``aggregate`` changed (None: it is gone or retired)."""
        kind = aggregate_id.split("-", 1)[0]
        if kind == LabletInstance.stream_prefix():
            self._refresh_instance(aggregate_id, aggregate)
        elif kind == Worker.stream_prefix():
            self._refresh_worker(aggregate_id, aggregate)
        elif kind == WorkerTemplate.stream_prefix():
            if aggregate is None:
                self._templates.pop(aggregate_id, None)
            else:
                self._templates[aggregate_id] = aggregate
            self._offers = None

    def _refresh_instance(self, instance_id: str, instance: LabletInstance | None) -> None:
        live = instance is not None and instance.is_live
        _toggle(self._live_ids, instance_id, live)
        self._demand.pop(instance_id, None)
        if live:
            assert instance is not None
            self._instances[instance_id] = instance
            self._finished.discard(instance_id)
        else:
            self._instances.pop(instance_id, None)
            if instance is None:
                self._finished.discard(instance_id)
            else:
                self._finished.add(instance_id)
        lives_on = instance.worker_id if live and instance and instance.worker_id \
            and instance.state in LIVING_ON_WORKER else None
        before = self._lives_on.get(instance_id)
        if before == lives_on:
            return
        if before is not None:
            self._living[before].discard(instance_id)
            self._fleet.pop(before, None)
            del self._lives_on[instance_id]
        if lives_on is not None:
            self._living.setdefault(lives_on, set()).add(instance_id)
            self._fleet.pop(lives_on, None)
            self._lives_on[instance_id] = lives_on

    def _refresh_worker(self, worker_id: str, worker: Worker | None) -> None:
        self._fleet.pop(worker_id, None)
        listed = worker is not None and worker.state not in GONE_STATES
        _toggle(self._worker_ids, worker_id, listed)
        if listed:
            assert worker is not None
            self._workers[worker_id] = worker
        else:
            self._workers.pop(worker_id, None)
        if worker is not None and worker.state is WorkerState.TERMINATED:
            self._terminated.add(worker_id)
        else:
            self._terminated.discard(worker_id)

    # -- reading -------------------------------------------------------------------------
    def snapshot(self, now: datetime) -> Snapshot:
        demand: list[DemandItem] = []
        for instance_id in self._live_ids:
            cached = self._demand.get(instance_id)
            if cached is None or not cached.valid_at(now):
                cached = self._demand_entry(self._instances[instance_id], now)
                self._demand[instance_id] = cached
            if cached.value is not None:
                demand.append(cached.value)
        fleet: list[FleetWorker] = []
        for worker_id in self._worker_ids:
            cached = self._fleet.get(worker_id)
            if cached is None or not cached.valid_at(now):
                worker = self._workers[worker_id]
                living = sorted(self._living.get(worker_id, ()))
                # state_since falls back on now when the state's entry was never recorded
                until = None if worker.entered_at(worker.state) is not None else now
                cached = _Cached(fleet_worker(worker, living, now), now, until)
                self._fleet[worker_id] = cached
            fleet.append(cached.value)
        if self._offers is None:
            self._offers = [TemplateOffer.from_spec(t.spec) for _, t in sorted(self._templates.items())
                            if not t.removed]
        finished = sorted(self._finished) + sorted(self._terminated)
        return Snapshot(now, fleet, list(self._offers), demand, finished)

    def _demand_entry(self, instance: LabletInstance, now: datetime) -> _Cached:
        item = _demand_item(instance, now, self.lead, self.margin)
        if instance.state is S.PENDING:
            clamp_from = None if instance.timeslot_start is None else instance.timeslot_start - self.lead
            # until the lead begins the window does not depend on now; after, it starts at now
            until = clamp_from if clamp_from is not None and now < clamp_from else now
        elif item is not None:
            until = instance.hold_end  # a booking counts until its hold ends
        else:
            until = None
        return _Cached(item, now, until)


def _toggle(ids: list[str], key: str, present: bool) -> None:
    """Keep ``key`` in (or out of) the sorted list ``ids``."""
    at = bisect.bisect_left(ids, key)
    found = at < len(ids) and ids[at] == key
    if present and not found:
        ids.insert(at, key)
    elif not present and found:
        del ids[at]


def rebuilt_view(
    aggregates: Iterable[Any], *, instantiation_lead: timedelta, teardown_margin: timedelta
) -> SnapshotView:
    """A view built from scratch from every aggregate (after a failed check)."""
    view = SnapshotView(instantiation_lead=instantiation_lead, teardown_margin=teardown_margin)
    for aggregate in aggregates:
        view.refresh(aggregate.id, aggregate)
    return view
