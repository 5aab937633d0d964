"""The pipeline: filter -> score -> select, tie-breaks, explanations, payload, replay."""

from __future__ import annotations

import json

import pytest

from domain.placement import (
    CandidateIndex,
    PlacementDecision,
    PlacementPipeline,
    default_pipeline,
)
from domain.placement.plugins.filters import LicenseAffinity, WorkerState
from domain.placement.plugins.scores import BinPacking
from domain.resources import Resources
from tests.domain.placement.builders import HOUR, MINUTE, T0, candidate, ledger, request, reserve


def _fleet():
    return [
        candidate("w-empty"),
        candidate("w-half", ledger=reserve(ledger(), "x", cpu=8, memory=32, nodes=10)),
        candidate("w-draining", state="DRAINING", ledger=reserve(ledger(), "y", cpu=12, memory=40, nodes=12)),
        candidate("w-eval", license_type="EVALUATION"),
        candidate("w-full", ledger=reserve(ledger(), "z", cpu=15, memory=60, nodes=16)),
    ]


def test_places_on_the_fullest_feasible_worker():
    decision = default_pipeline().decide(request(), _fleet())
    assert decision.outcome == "placed"
    assert decision.chosen_worker_id == "w-half"
    assert decision.ranking == ["w-half", "w-empty"]
    assert decision.candidates == ["w-empty", "w-half", "w-draining", "w-eval", "w-full"]
    assert set(decision.scores) == {"w-empty", "w-half"}
    assert decision.total_scores["w-half"] > decision.total_scores["w-empty"]
    assert decision.needed is None
    assert decision.event_name == "PlacementDecided"


def test_every_rejected_worker_has_its_first_failing_filter():
    decision = default_pipeline().decide(request(), _fleet())
    assert decision.rejections == {
        "w-draining": [{"plugin": "WorkerState", "reason": "worker is DRAINING and accepts no new instances"}],
        "w-eval": [
            {"plugin": "LicenseAffinity", "reason": "license EVALUATION not in affinity [ENTERPRISE, PERSONAL]"}
        ],
        "w-full": [
            {"plugin": "NodeLimit", "reason": "nodes over window: 16 reserved at peak + 5 requested > limit 20"}
        ],
    }
    assert decision.reasons_for("w-full") == ["nodes over window: 16 reserved at peak + 5 requested > limit 20"]
    assert decision.reasons_for("w-half") == []


def test_record_all_rejections_lists_every_failing_filter():
    decision = default_pipeline(record_all_rejections=True).decide(request(), _fleet())
    plugins = [r["plugin"] for r in decision.rejections["w-full"]]
    assert plugins == ["NodeLimit", "ResourcesOverWindow"]
    assert decision.chosen_worker_id == "w-half"


@pytest.mark.parametrize(
    ("fleet", "expected"),
    [
        # equal scores: the worker ready earliest wins, a RUNNING one (no ready time) first
        (
            [
                candidate("w-b", state="PROVISIONING", expected_ready_at=T0 - 10 * MINUTE),
                candidate("w-c", state="STOPPED", expected_ready_at=T0 - 20 * MINUTE),
            ],
            ["w-c", "w-b"],
        ),
        (
            [
                candidate("w-b", state="PROVISIONING", expected_ready_at=T0 - 10 * MINUTE),
                candidate("w-z"),
            ],
            ["w-z", "w-b"],
        ),
        # equal scores and readiness: the smallest worker id, whatever the input order
        ([candidate("w-2"), candidate("w-10"), candidate("w-1")], ["w-1", "w-10", "w-2"]),
        # the score beats readiness
        (
            [
                candidate("w-early"),
                candidate(
                    "w-late",
                    state="PENDING",
                    expected_ready_at=T0 - MINUTE,
                    ledger=reserve(ledger(), "x", cpu=4, memory=8, nodes=2),
                ),
            ],
            ["w-late", "w-early"],
        ),
    ],
)
def test_deterministic_tie_breaks(fleet, expected):
    assert default_pipeline().decide(request(), fleet).ranking == expected
    assert default_pipeline().decide(request(), list(reversed(fleet))).ranking == expected


def test_unplaceable_explains_every_worker_and_what_is_needed():
    decision = default_pipeline().decide(request(requirements=Resources(17, 8, 20)), _fleet())
    assert decision.outcome == "unplaceable"
    assert decision.chosen_worker_id is None
    assert decision.event_name == "PlacementFailed"
    assert set(decision.rejections) == set(decision.candidates)
    assert all(decision.reasons_for(w) for w in decision.candidates)
    assert decision.needed == {
        "resources": {"cpu_cores": 17.0, "memory_gb": 8.0, "storage_gb": 20.0},
        "node_count": 5,
        "port_count": 2,
        "license_affinity": ["ENTERPRISE", "PERSONAL"],
        "nested_virt": False,
        "ami_name_pattern": "CML-2.*",
        "ami_min_version": "2.8",
        "hold_start": "2026-03-02T09:00:00+00:00",
        "hold_end": "2026-03-02T11:00:00+00:00",
        "ready_by": "2026-03-02T09:00:00+00:00",
        "workers_considered": 5,
        "rejections_by_plugin": {"LicenseAffinity": 1, "NodeLimit": 1, "ResourcesOverWindow": 2, "WorkerState": 1},
    }


def test_no_workers_at_all_is_unplaceable():
    decision = default_pipeline().decide(request(), [])
    assert decision.outcome == "unplaceable"
    assert decision.candidates == []
    assert decision.needed["workers_considered"] == 0
    assert decision.needed["rejections_by_plugin"] == {}


def test_decision_round_trips_through_json():
    for r in (request(), request(requirements=Resources(17, 8, 20))):
        decision = default_pipeline(record_all_rejections=True).decide(r, _fleet())
        recorded = json.loads(json.dumps(decision.to_dict()))
        assert PlacementDecision.from_dict(recorded) == decision
        assert PlacementDecision.from_dict(recorded).to_dict() == recorded


def test_to_dict_is_a_copy():
    decision = default_pipeline().decide(request(), _fleet())
    payload = decision.to_dict()
    payload["rejections"]["w-full"][0]["reason"] = "changed"
    payload["scores"]["w-half"]["BinPacking"] = -1
    assert decision.reasons_for("w-full") != ["changed"]
    assert decision.scores["w-half"]["BinPacking"] >= 0


def test_replay_from_recorded_inputs_gives_an_equal_decision():
    fleet = _fleet()
    first = default_pipeline().decide(request(), fleet)
    # rebuild every input from its recorded form, as a replay would
    replayed_request = type(request()).from_dict(json.loads(json.dumps(request().to_dict())))
    replayed_fleet = [
        candidate(c.worker_id, state=c.state, license_type=c.license_type, ledger=type(c.ledger).from_dict(c.ledger.to_dict()))
        for c in fleet
    ]
    assert default_pipeline().decide(replayed_request, replayed_fleet) == first


@pytest.mark.parametrize("affinity", [frozenset(), frozenset({"PERSONAL"}), frozenset({"ENTERPRISE", "EVALUATION"})])
def test_an_index_gives_the_same_decision(affinity):
    fleet = _fleet() + [candidate("w-ent", license_type="ENTERPRISE", max_nodes=100)]
    r = request(license_affinity=affinity)
    decision = default_pipeline().decide(r, CandidateIndex(fleet))
    assert decision == default_pipeline().decide(r, fleet)
    assert decision.candidates == [c.worker_id for c in fleet]


def test_candidates_may_be_any_iterable():
    assert default_pipeline().decide(request(), iter(_fleet())).chosen_worker_id == "w-half"


def test_duplicate_worker_ids_are_a_caller_error():
    with pytest.raises(ValueError, match="distinct"):
        default_pipeline().decide(request(), [candidate("w"), candidate("w")])


def test_plugin_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        PlacementPipeline([WorkerState(), WorkerState()], [BinPacking()])


def test_a_custom_policy_is_recorded_and_weights_scores():
    class PreferEmpty:
        name = "PreferEmpty"
        weight = 3.0

        def score(self, request, candidate):
            return 100.0 - BinPacking().score(request, candidate)

    pipeline = PlacementPipeline([LicenseAffinity(), WorkerState()], [BinPacking(), PreferEmpty()], "spread", "7")
    decision = pipeline.decide(request(), _fleet())
    assert (decision.policy, decision.policy_version) == ("spread", "7")
    # with only two filters the over-full worker is feasible; the spreading weight wins
    assert decision.chosen_worker_id == "w-empty"
    scores = decision.scores["w-half"]
    assert decision.total_scores["w-half"] == pytest.approx((scores["BinPacking"] + 3 * scores["PreferEmpty"]) / 4, abs=1e-4)


def test_a_future_booking_may_go_to_a_worker_still_booting():
    later = request(hold_start=T0 + 3 * HOUR, hold_end=T0 + 5 * HOUR, timeslot_start=T0 + 3 * HOUR + 15 * MINUTE)
    booting = candidate("w-booting", state="PROVISIONING", expected_ready_at=T0 + 20 * MINUTE)
    assert default_pipeline().decide(later, [booting]).chosen_worker_id == "w-booting"
    assert default_pipeline().decide(request(), [booting]).outcome == "unplaceable"


@pytest.mark.parametrize(
    ("outcome", "chosen"), [("placed", None), ("unplaceable", "w"), ("maybe", None)]
)
def test_inconsistent_decisions_are_refused(outcome, chosen):
    with pytest.raises(ValueError):
        PlacementDecision("i", chosen, [], {}, {}, {}, "p", "1", outcome)
