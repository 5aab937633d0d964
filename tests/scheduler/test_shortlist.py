"""The shortlist is exact: over random fleets and ledgers it chooses the worker the policy
chooses over the whole fleet, with the same scores, and says "nothing fits" exactly when
the policy does."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import Reservation, ReservationLedger
from domain.placement import PlacementRequest, WorkerCandidate, default_pipeline
from domain.resources import Resources
from processors.scheduler.shortlist import MAX_WITHOUT_FIT, build_fleet, shortlist_decide
from tests.scheduler.support import T0

SIZES = [(8, 32, 10), (16, 64, 20), (16, 64, 20), (48, 192, 120)]
LICENSES = ["PERSONAL", "ENTERPRISE", "EVALUATION"]

hold_st = st.tuples(st.integers(0, 32), st.integers(1, 12)).map(
    lambda t: (T0 + timedelta(minutes=15 * t[0]), T0 + timedelta(minutes=15 * (t[0] + t[1])))
)
worker_st = st.fixed_dictionaries({
    "size": st.integers(0, len(SIZES) - 1),
    "license": st.sampled_from(LICENSES),
    "state": st.sampled_from(["RUNNING", "RUNNING", "RUNNING", "PROVISIONING", "DRAINING"]),
    "ready": st.sampled_from([None, 0, 60]),
    "holds": st.lists(st.tuples(hold_st, st.sampled_from([1, 2, 4, 8]), st.integers(1, 8)), max_size=6),
})
request_st = st.fixed_dictionaries({
    "hold": hold_st, "cpu": st.sampled_from([1, 2, 4, 8]), "nodes": st.integers(1, 10),
    "ports": st.integers(0, 3), "licenses": st.sets(st.sampled_from(LICENSES)),
})


def candidate(n: int, spec: dict) -> WorkerCandidate:
    cpu, memory, nodes = SIZES[spec["size"]]
    ledger = ReservationLedger(Resources(cpu, memory, 500), nodes, (2000, 2009))
    for k, ((start, end), need, node_count) in enumerate(spec["holds"]):
        reservation = Reservation(f"i{k}", Resources(need, need * 4, 10), node_count, {}, start, end)
        if not ledger.check(reservation.resources, node_count, 0, start, end):
            ledger.add(reservation)
    ready = None if spec["state"] == "RUNNING" or spec["ready"] is None else T0 + timedelta(minutes=spec["ready"])
    return WorkerCandidate(f"Worker-{n:03d}", spec["state"], "t", spec["license"], nodes, True, "CML-2.9.1",
                           "2.9.1", ready, ledger)


@settings(max_examples=150, deadline=None)
@given(workers=st.lists(worker_st, min_size=1, max_size=30), req=request_st)
def test_the_shortlist_chooses_what_the_whole_fleet_decision_chooses(workers: list[dict], req: dict) -> None:
    candidates = [candidate(n, spec) for n, spec in enumerate(workers)]
    start, end = req["hold"]
    request = PlacementRequest(
        instance_id="LabletInstance-x", requirements=Resources(req["cpu"], req["cpu"] * 4, 10),
        node_count=req["nodes"], license_affinity=frozenset(req["licenses"]), nested_virt=False,
        ami_name_pattern=None, ami_min_version=None, port_names=tuple(f"p{k}" for k in range(req["ports"])),
        hold_start=start, hold_end=end, timeslot_start=start + timedelta(minutes=15),
    )
    pipeline = default_pipeline()
    full = pipeline.decide(request, candidates)
    short = shortlist_decide(pipeline, request, build_fleet(candidates))
    if not full.placed or short is None:
        assert short is None  # nothing fits, or nothing among the first MAX_WITHOUT_FIT: decided in full
        assert not full.placed or len(candidates) > MAX_WITHOUT_FIT
        return
    decision, pruned = short
    assert decision.chosen_worker_id == full.chosen_worker_id
    assert pruned == len(candidates) - len(decision.candidates)
    for worker_id, total in decision.total_scores.items():
        assert total == full.total_scores[worker_id]
    for worker_id, reasons in decision.rejections.items():
        assert reasons == full.rejections[worker_id]


def test_a_worker_that_can_beat_the_best_by_less_than_a_point_is_still_evaluated() -> None:
    """The walk meets a worker busy just before the window in a bucket the window touches
    (high bound, empty window), then one slightly busy in the window itself (lower bound,
    higher score): it must win. The window is off the 15-minute grid (like ASAP holds)."""
    window = (T0 + timedelta(hours=4, minutes=35), T0 + timedelta(hours=5, minutes=5))

    def worker(n: int, *holds: tuple[tuple, float, int]) -> WorkerCandidate:
        ledger = ReservationLedger(Resources(16, 64, 500), 20, (2000, 2009))
        for k, ((start, end), cpu, nodes) in enumerate(holds):
            ledger.add(Reservation(f"i{n}-{k}", Resources(cpu, cpu * 4, 1), nodes, {}, start, end))
        return WorkerCandidate(f"Worker-{n:03d}", "RUNNING", "t", "PERSONAL", 20, True, "CML-2.9.1", "2.9.1",
                               None, ledger)

    decoys = [worker(n, (window, 16, 1)) for n in range(3)]  # full in the window: bound 100, rejected
    earlier = worker(3, ((T0 + timedelta(hours=4, minutes=20), window[0]), 12, 10))  # ends as the window starts
    slightly_busier = worker(4, (window, 0.16, 0))  # +2/3 of a point in the window itself
    request = PlacementRequest(
        instance_id="LabletInstance-x", requirements=Resources(2, 8, 10), node_count=2,
        license_affinity=frozenset(), nested_virt=False, ami_name_pattern=None, ami_min_version=None,
        port_names=(), hold_start=window[0], hold_end=window[1], timeslot_start=window[0],
    )
    candidates = [*decoys, earlier, slightly_busier]
    full = default_pipeline().decide(request, candidates)
    assert full.chosen_worker_id == slightly_busier.worker_id
    assert 0 < full.total_scores[slightly_busier.worker_id] - full.total_scores[earlier.worker_id] < 1
    short = shortlist_decide(default_pipeline(), request, build_fleet(candidates))
    assert short is not None and short[0].chosen_worker_id == slightly_busier.worker_id
    assert short[0].candidates[:4] == [d.worker_id for d in decoys] + [earlier.worker_id]  # the order it was met


@settings(max_examples=100, deadline=None)
@given(spec=worker_st)
def test_bucket_peaks_are_the_ledgers_peaks_per_bucket(spec: dict) -> None:
    from datetime import datetime, timezone

    from processors.scheduler.shortlist import BUCKET, bucket_peaks

    worker = candidate(0, spec)
    peaks = bucket_peaks(worker)
    assert peaks is not None
    for bucket, (cpu, memory, nodes) in peaks.items():
        start = datetime.fromtimestamp(bucket * BUCKET.total_seconds(), tz=timezone.utc)
        peak, peak_nodes = worker.ledger.peak(start, start + BUCKET)
        assert (cpu, memory, nodes) == pytest.approx((peak.cpu_cores, peak.memory_gb, peak_nodes))
    for r in worker.ledger.reservations():  # every bucket a hold touches is there
        assert math.floor(r.hold_start.timestamp() / BUCKET.total_seconds()) in peaks


change_st = st.one_of(
    st.tuples(st.just("hold"), st.integers(0, 29), hold_st, st.sampled_from([1, 2, 4, 8]), st.integers(1, 8)),
    st.tuples(st.just("release"), st.integers(0, 29)),
    st.tuples(st.just("state"), st.integers(0, 29), st.sampled_from(["RUNNING", "PROVISIONING", "DRAINING"])),
    st.tuples(st.just("remove"), st.integers(0, 29)),
    st.tuples(st.just("walk"), st.tuples(request_st, st.sampled_from([0, 0, 7]))),
)
#: a request and how many minutes its window is moved off the 15-minute grid (ASAP holds are)
shifted_request_st = st.tuples(request_st, st.sampled_from([0, 0, 7]))


def _request(shifted: tuple[dict, int]) -> PlacementRequest:
    req, shift = shifted
    start, end = (moment + timedelta(minutes=shift) for moment in req["hold"])
    return PlacementRequest(
        instance_id="LabletInstance-x", requirements=Resources(req["cpu"], req["cpu"] * 4, 10),
        node_count=req["nodes"], license_affinity=frozenset(req["licenses"]), nested_virt=False,
        ami_name_pattern=None, ami_min_version=None, port_names=tuple(f"p{k}" for k in range(req["ports"])),
        hold_start=start, hold_end=end, timeslot_start=start + timedelta(minutes=15),
    )


def _walked(fleet, request: PlacementRequest) -> list[tuple]:
    return [(bound, worker.candidate.worker_id, worker.tie, peaks) for bound, worker, peaks in fleet.walk(request)]


@settings(max_examples=120, deadline=None)
@given(workers=st.lists(worker_st, min_size=1, max_size=30), changes=st.lists(change_st, max_size=25),
       final=st.lists(shifted_request_st, min_size=1, max_size=4))
def test_the_fleet_kept_up_to_date_walks_like_a_fresh_one(workers: list[dict], changes: list, final: list) -> None:
    """The scheduler keeps one ``ShortlistFleet`` and updates the changed workers; its sorted
    windows (kept across decisions, re-sorted lazily) must walk exactly like a fleet built from
    scratch, so the kept one never changes a decision (or its record)."""
    from dataclasses import replace

    from processors.scheduler.shortlist_fleet import ShortlistFleet

    current = {c.worker_id: c for c in (candidate(n, spec) for n, spec in enumerate(workers))}
    kept = ShortlistFleet(max_windows=3)  # small: windows are dropped and rebuilt too
    for c in current.values():
        kept.update(c)
    ids = sorted(current)
    for k, change in enumerate(changes):
        kind = change[0]
        if kind == "walk":
            request = _request(change[1])
            assert _walked(kept, request) == _walked(build_fleet(current.values()), request)
            continue
        if not ids:
            continue
        worker_id = ids[change[1] % len(ids)]
        if worker_id not in current:
            continue
        c = current[worker_id]
        if kind == "hold":
            (start, end), need, nodes = change[2], change[3], change[4]
            if not c.ledger.check(Resources(need, need * 4, 10), nodes, 0, start, end):
                c.ledger.add(Reservation(f"c{k}", Resources(need, need * 4, 10), nodes, {}, start, end))
        elif kind == "release":
            held = [r.instance_id for r in c.ledger.reservations()]
            if held:
                c.ledger.remove(held[0])
        elif kind == "state":
            c = current[worker_id] = replace(c, state=change[2])
        elif kind == "remove":
            del current[worker_id]
            kept.remove(worker_id)
            continue
        kept.update(c)
    fresh = build_fleet(current.values())
    pipeline = default_pipeline()
    for req in final:
        request = _request(req)
        assert _walked(kept, request) == _walked(fresh, request)
        assert shortlist_decide(pipeline, request, kept) == shortlist_decide(pipeline, request, fresh)
