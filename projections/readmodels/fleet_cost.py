"""Fleet cost so far (SPEC §8 "cost so far", §9): worker-hours, cost and idle share per template.

One document per worker: its template snapshot (hourly cost, capacity), every state change
``(at, state)`` and the spans its reservations were actually held (a hold released early
ends at the release; a terminated worker's holds end with it). The arithmetic is the
domain's (``domain.scaling.cost``): billed states are PROVISIONING, RUNNING and DRAINING;
idle = billed time with no hold. The report gives a valid lower bound on worker-hours for
the holds served (``instant_lower_bound``: at every instant the fewest workers of the largest
template offered that could hold the labs then held, plus unavoidable boots), so
``worker_hours / lower_bound`` measures waste whatever the placement; and, per template, the
capacity-hours of the holds *as placed*, perfectly packed (``packed_as_placed``: a reference
that a bad placement can flatter, not a bound).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import datetime
from typing import Any

from domain.errors import InvalidInput
from domain.ledger import Reservation
from domain.resources import Resources
from domain.scaling.cost import fleet_cost, lower_bounds, state_intervals
from domain.scaling.instant_bound import instant_lower_bound
from domain.scaling.inputs import TemplateOffer
from domain.worker import Worker, WorkerState
from domain.worker_template import WorkerTemplateSpec
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import Document, ReadModelStore, ReadModelTx, Table
from projections.readmodels.templates import TEMPLATES
from projections.readmodels.workers import ROLE, STATE_AFTER

FLEET_COST = Table("fleet_cost_workers", {"template_name": str})
# One row per hold, not a map inside the worker's document: a worker serves holds all its
# life, and a document holding every one was re-encoded on each of its events (the 1 M
# rebuild's cost grew with the square of the log).
FLEET_COST_HOLDS = Table("fleet_cost_holds", {"template_name": str, "worker_id": str})
_SPEC_FIELDS = frozenset(f.name for f in fields(WorkerTemplateSpec))
SCAN_PAGE = 500


def _hold_key(worker_id: str, instance_id: str) -> str:
    return f"{worker_id}/{instance_id}"


class FleetCostProjection(Projection):
    name = "fleet_cost"
    version = 2
    rebuild_weight = 0.6
    tables = (FLEET_COST, FLEET_COST_HOLDS)
    handled_events = (Worker.Event,)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        role = ROLE[event.__class__]  # a dict hit: isinstance on the library's event classes is slow
        if role is None:
            return
        worker_id = stored.stream_id
        if role == "requested":
            tx.put(FLEET_COST.name, worker_id, {
                "worker_id": worker_id,
                "template_name": event.template_name,
                "template": event.template,
                "transitions": [[event.occurred_at.isoformat(), WorkerState.PENDING.value]],
                "open": [],  # instances holding it now: what its termination cuts
            })
            return
        doc = tx.get(FLEET_COST.name, worker_id)
        if doc is None:
            return
        at = event.occurred_at
        changed = False
        if role == "reserved":
            tx.put(FLEET_COST_HOLDS.name, _hold_key(worker_id, event.instance_id), {
                "worker_id": worker_id, "template_name": doc["template_name"], "instance_id": event.instance_id,
                "start": event.hold_start.isoformat(), "end": event.hold_end.isoformat(),
                "resources": event.resources, "nodes": event.nodes})
            if event.instance_id not in doc["open"]:
                doc["open"].append(event.instance_id)
                changed = True
        elif role == "released":
            _cut(tx, worker_id, event.instance_id, at)
            if event.instance_id in doc["open"]:
                doc["open"].remove(event.instance_id)
                changed = True
        elif role == "extended":
            key = _hold_key(worker_id, event.instance_id)
            hold = tx.get(FLEET_COST_HOLDS.name, key)
            if hold is not None:
                hold["end"] = event.hold_end.isoformat()
                tx.put(FLEET_COST_HOLDS.name, key, hold)
        state = STATE_AFTER.get(type(event))
        if state is not None:
            doc["transitions"].append([at.isoformat(), state.value])
            changed = True
            if state is WorkerState.TERMINATED:
                for instance_id in doc["open"]:
                    _cut(tx, worker_id, instance_id, at)
                doc["open"] = []
        if changed:
            tx.put(FLEET_COST.name, worker_id, doc)


def _cut(tx: ReadModelTx, worker_id: str, instance_id: str, at: datetime) -> None:
    """A hold given back at ``at``: it was held until then (or not at all, if not begun)."""
    key = _hold_key(worker_id, instance_id)
    hold = tx.get(FLEET_COST_HOLDS.name, key)
    if hold is None:
        return
    if datetime.fromisoformat(hold["start"]) >= at:
        tx.delete(FLEET_COST_HOLDS.name, key)
    elif datetime.fromisoformat(hold["end"]) > at:
        hold["end"] = at.isoformat()
        tx.put(FLEET_COST_HOLDS.name, key, hold)


def _reservations(doc: Document, until: datetime) -> list[Reservation]:
    held = []
    for instance_id, hold in sorted(doc.get("holds", {}).items()):
        start = datetime.fromisoformat(hold["start"])
        end = min(datetime.fromisoformat(hold["end"]), until)
        if end > start:
            held.append(Reservation(instance_id, Resources.from_dict(hold["resources"]), hold["nodes"], {}, start, end))
    return held


def _offer(spec: Document) -> TemplateOffer | None:
    known = {k: v for k, v in spec.items() if k in _SPEC_FIELDS}
    try:
        return TemplateOffer.from_spec(WorkerTemplateSpec.from_dict(known))
    except (InvalidInput, KeyError, TypeError, ValueError):  # an older snapshot the spec no longer reads
        return None


def cost_report(docs: list[Document], now: datetime, catalog: Iterable[Document] = ()) -> dict[str, Any]:
    """Cost so far of these workers at ``now`` (a pure function of the documents, each with
    its ``holds`` by instance id); ``catalog``: the template documents, so the bound counts
    templates the fleet did not use."""
    intervals = []
    hourly: dict[str, float] = {}
    busy: dict[str, list[tuple[datetime, datetime]]] = {}
    served: dict[str, list[Reservation]] = {}
    offers: dict[str, TemplateOffer] = {}
    for doc in docs:
        name = doc["template_name"]
        hourly.setdefault(name, float(doc["template"].get("hourly_cost") or 0.0))
        offer = offers.get(name) or _offer(doc["template"])
        if offer is not None:
            offers[name] = offer
        transitions = [(datetime.fromisoformat(at), state) for at, state in doc["transitions"]]
        intervals.extend(state_intervals(doc["worker_id"], name, transitions, now))
        held = _reservations(doc, now)
        busy[doc["worker_id"]] = [(r.hold_start, r.hold_end) for r in held]
        served.setdefault(name, []).extend(held)
    report = fleet_cost(intervals, hourly, busy).to_dict()
    for spec in catalog:
        offer = _offer(spec)
        if offer is not None:
            offers.setdefault(offer.name, offer)
    bound = instant_lower_bound(list(offers.values()), [r for held in served.values() for r in held])
    report["at"] = now.isoformat()
    report["workers"] = len(docs)
    report["lower_bound"] = bound.to_dict()
    report["lower_bound_worker_hours"] = round(bound.hours, 6)
    report["waste_ratio"] = round(report["worker_hours"] / bound.hours, 6) if bound.hours else None
    report["packed_as_placed"] = {name: b.to_dict() for name, b in lower_bounds(offers.values(), served).items()}
    return report


class FleetCostQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def report(self, now: datetime, *, template_name: str | None = None) -> dict[str, Any]:
        where = {} if template_name is None else {"template_name": template_name}
        catalog = () if template_name is not None else list(self._scan(TEMPLATES.name, {}))
        docs = {doc["worker_id"]: {**doc, "holds": {}} for doc in self._scan(FLEET_COST.name, where)}
        for hold in self._scan(FLEET_COST_HOLDS.name, where):
            doc = docs.get(hold["worker_id"])
            if doc is not None:
                doc["holds"][hold["instance_id"]] = hold
        return cost_report(list(docs.values()), now, catalog)

    def _scan(self, table: str, where: dict[str, Any]) -> Iterator[Document]:
        after: str | None = None
        while True:
            page = self.store.query(table, where=where, limit=SCAN_PAGE, after=after)
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor


PROJECTIONS = (FleetCostProjection(),)
