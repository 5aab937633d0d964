"""Properties over random fleets and booking streams, placed one by one.

After every stream: no ledger is overbooked at any instant, ports are unique among
overlapping reservations, every unplaced request has reasons for every worker,
re-deciding from the recorded inputs reproduces each decision, and the naive baseline
agrees with the pipeline on every decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.ledger import Reservation, ReservationLedger
from domain.placement import (
    CandidateIndex,
    PlacementDecision,
    PlacementRequest,
    WorkerCandidate,
    default_pipeline,
    naive_decide,
)
from domain.resources import TOLERANCE, Resources
from tests.domain.placement.builders import T0

STATES = ["RUNNING", "RUNNING", "RUNNING", "PENDING", "PROVISIONING", "STOPPED", "DRAINING", "STOPPING", "TERMINATED", "FAILED"]
LICENSES = ["PERSONAL", "ENTERPRISE", "EVALUATION"]
AMI_VERSIONS = ["2.8.0", "2.9", "2.9.1", "2.10.0"]
PORT_NAMES = ("serial_1", "serial_2", "vnc_1", "vnc_2")
QUARTER = timedelta(minutes=15)

PIPELINE = default_pipeline()
PIPELINE_ALL = default_pipeline(record_all_rejections=True)


def _quarters(low: int, high: int):
    return st.integers(low, high).map(lambda n: n * QUARTER)


@st.composite
def reservations(draw, worker: str, count: int):
    made = []
    for n in range(count):
        start = T0 + draw(_quarters(-4, 20))
        made.append(
            Reservation(
                f"{worker}-existing-{n}",
                Resources(draw(st.sampled_from([0.5, 1, 2, 4])), draw(st.sampled_from([1, 4, 8])), draw(st.sampled_from([0, 10, 50]))),
                draw(st.integers(0, 8)),
                {},
                start,
                start + draw(_quarters(1, 12)),
            )
        )
    return made


@st.composite
def workers(draw, worker_id: str):
    license_type = draw(st.sampled_from(LICENSES))
    max_nodes = draw(st.integers(1, 20 if license_type == "PERSONAL" else 40))
    low = 2000 + draw(st.integers(0, 10))
    ledger = ReservationLedger(
        Resources(draw(st.sampled_from([2, 4, 8, 16])), draw(st.sampled_from([8, 16, 32, 64])), draw(st.sampled_from([50, 200]))),
        max_nodes,
        (low, low + draw(st.integers(0, 5))),
    )
    # existing bookings: those that fit are kept, with the ports the ledger allocates
    for existing in draw(reservations(worker_id, draw(st.integers(0, 6)))):
        wanted = list(PORT_NAMES[: draw(st.integers(0, 2))])
        if ledger.check(existing.resources, existing.nodes, len(wanted), existing.hold_start, existing.hold_end):
            continue
        ports = ledger.allocate_ports(wanted, existing.hold_start, existing.hold_end)
        ledger.add(Reservation(existing.instance_id, existing.resources, existing.nodes, ports, existing.hold_start, existing.hold_end))
    state = draw(st.sampled_from(STATES))
    ready_at = draw(st.one_of(st.none(), _quarters(-8, 16).map(lambda d: T0 + d)))
    return WorkerCandidate(
        worker_id=worker_id,
        state=state,
        template_name=f"{license_type.lower()}-template",
        license_type=license_type,
        max_nodes=max_nodes,
        nested_virt=draw(st.booleans()),
        ami_name=draw(st.sampled_from(["CML-2.9.1", "CML-2.10.0", "CML-3.0.0"])),
        ami_version=draw(st.sampled_from(AMI_VERSIONS)),
        expected_ready_at=ready_at,
        ledger=ledger,
    )


@st.composite
def fleets(draw):
    count = draw(st.integers(0, 7))
    return [draw(workers(f"w-{n:02d}")) for n in range(count)]


@st.composite
def booking_streams(draw):
    made = []
    for n in range(draw(st.integers(1, 10))):
        hold_start = T0 + draw(_quarters(0, 16))
        asap = draw(st.booleans())
        made.append(
            PlacementRequest(
                instance_id=f"i-{n:02d}",
                requirements=Resources(draw(st.sampled_from([0.5, 1, 2, 4, 8])), draw(st.sampled_from([1, 4, 8, 16])), draw(st.sampled_from([0, 10, 40]))),
                node_count=draw(st.integers(0, 12)),
                license_affinity=frozenset(draw(st.sets(st.sampled_from(LICENSES), max_size=3))),
                nested_virt=draw(st.booleans()),
                ami_name_pattern=draw(st.sampled_from([None, "CML-2.*", "CML-3.*"])),
                ami_min_version=draw(st.sampled_from([None, "2.9", "2.10"])),
                port_names=PORT_NAMES[: draw(st.integers(0, 3))],
                hold_start=hold_start,
                hold_end=hold_start + draw(_quarters(1, 8)),
                timeslot_start=None if asap else hold_start + QUARTER,
                instantiation_lead=QUARTER,
            )
        )
    return made


@dataclass
class Recorded:
    request: dict
    ledgers: list[dict]
    decision: dict


def _rebuild(fleet: list[WorkerCandidate], ledgers: list[dict]) -> list[WorkerCandidate]:
    return [
        WorkerCandidate(
            c.worker_id, c.state, c.template_name, c.license_type, c.max_nodes, c.nested_virt,
            c.ami_name, c.ami_version, c.expected_ready_at, ReservationLedger.from_dict(recorded),
        )
        for c, recorded in zip(fleet, ledgers, strict=True)
    ]


def _assert_agree(decision: PlacementDecision, naive: PlacementDecision, all_rejections: PlacementDecision) -> None:
    assert naive.chosen_worker_id == decision.chosen_worker_id
    assert naive.ranking == decision.ranking
    assert naive.total_scores == decision.total_scores
    assert naive.candidates == decision.candidates
    assert set(naive.rejections) == set(decision.rejections)
    for worker_id, failed in naive.rejections.items():
        # the pipeline stops at the first failing filter; the baseline checks all
        assert failed[0]["plugin"] == decision.rejections[worker_id][0]["plugin"]
        assert [r["plugin"] for r in failed] == [r["plugin"] for r in all_rejections.rejections[worker_id]]
    # the baseline counts every failing filter, like record_all_rejections
    assert naive.needed == all_rejections.needed


def _assert_never_overbooked(ledger: ReservationLedger) -> None:
    booked = ledger.reservations()
    for probe in booked:
        # usage only rises at a start, so checking every start checks every instant
        at = probe.hold_start
        active = [r for r in booked if r.hold_start <= at < r.hold_end]
        for field in ("cpu_cores", "memory_gb", "storage_gb"):
            used = sum(getattr(r.resources, field) for r in active)
            assert used <= getattr(ledger.capacity, field) + TOLERANCE
        assert sum(r.nodes for r in active) <= ledger.max_nodes
        ports = [p for r in active for p in r.ports.values()]
        assert len(ports) == len(set(ports))
        low, high = ledger.port_range
        assert all(low <= p <= high for p in ports)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), stream=booking_streams())
def test_random_streams_place_safely_explainably_and_replayably(fleet, stream):
    records: list[Recorded] = []
    by_id = {c.worker_id: c for c in fleet}
    index = CandidateIndex(fleet)  # kept across the stream, told of every ledger change
    for request in stream:
        ledgers_before = [c.ledger.to_dict() for c in fleet]
        decision = PIPELINE.decide(request, fleet)
        _assert_agree(decision, naive_decide(request, fleet), PIPELINE_ALL.decide(request, fleet))
        assert PIPELINE.decide(request, index) == decision
        records.append(Recorded(request.to_dict(), ledgers_before, json.loads(json.dumps(decision.to_dict()))))

        assert decision.candidates == [c.worker_id for c in fleet]
        if decision.placed:
            assert decision.chosen_worker_id not in decision.rejections
            best = decision.total_scores[decision.chosen_worker_id]
            assert best == max(decision.total_scores.values())
            chosen = by_id[decision.chosen_worker_id].ledger
            ports = chosen.allocate_ports(list(request.port_names), request.hold_start, request.hold_end)
            # add() re-checks capacity and ports: a wrong placement raises here
            chosen.add(Reservation(request.instance_id, request.requirements, request.node_count, ports, request.hold_start, request.hold_end))
            index.ledger_changed(decision.chosen_worker_id)
        else:
            assert set(decision.rejections) == {c.worker_id for c in fleet}
            assert all(decision.reasons_for(c.worker_id) for c in fleet)
            assert decision.needed["workers_considered"] == len(fleet)
            assert sum(decision.needed["rejections_by_plugin"].values()) == len(fleet)

    for candidate in fleet:
        _assert_never_overbooked(candidate.ledger)

    for record in records:
        replayed = PIPELINE.decide(PlacementRequest.from_dict(record.request), _rebuild(fleet, record.ledgers))
        assert replayed == PlacementDecision.from_dict(record.decision)
        assert replayed.to_dict() == record.decision


@settings(max_examples=40, deadline=None)
@given(fleet=fleets(), stream=booking_streams())
def test_a_placement_always_fits_the_chosen_ledger(fleet, stream):
    # the pipeline's verdict and the ledger's own check agree on the chosen worker
    for request in stream:
        decision = PIPELINE.decide(request, fleet)
        for worker_id in decision.ranking:
            ledger = next(c.ledger for c in fleet if c.worker_id == worker_id)
            assert ledger.check(request.requirements, request.node_count, request.port_count, request.hold_start, request.hold_end) == []


@settings(max_examples=50, deadline=None)
@given(fleet=fleets(), stream=booking_streams())
def test_batch_plugins_agree_with_one_by_one(fleet, stream):
    from domain.placement.plugins import split_one_by_one
    from domain.placement.window import reading

    for request in stream:
        for plugin in PIPELINE.filters:
            with reading():
                batch = plugin.filter_many(request, list(fleet))
            assert batch == split_one_by_one(plugin, request, list(fleet))
        for plugin in PIPELINE.scores:
            with reading():
                batch_scores = plugin.score_many(request, list(fleet))
            assert batch_scores == [plugin.score(request, c) for c in fleet]
