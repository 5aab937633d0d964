"""CandidateIndex: same decisions as a plain list, and ledger reads kept only while valid."""

from __future__ import annotations

import pytest

from domain.ledger import Reservation
from domain.placement import CandidateIndex, default_pipeline
from domain.resources import Resources
from tests.domain.placement.builders import HOUR, T0, candidate, ledger, request, reserve


def _fleet():
    return [
        candidate("w-a"),
        candidate("w-b", ledger=reserve(ledger(), "x", cpu=4, memory=16, nodes=4)),
        candidate("w-c", license_type="EVALUATION"),
    ]


def _fill(worker_ledger, instance_id: str) -> None:
    worker_ledger.add(Reservation(instance_id, Resources(12, 40, 10), 12, {}, T0, T0 + 2 * HOUR))


def test_remembered_reads_are_forgotten_when_told():
    fleet = _fleet()
    index = CandidateIndex(fleet)
    assert default_pipeline().decide(request(), index).chosen_worker_id == "w-b"
    _fill(fleet[1].ledger, "filler")
    index.ledger_changed("w-b")
    decision = default_pipeline().decide(request(), index)
    assert decision == default_pipeline().decide(request(), fleet)
    assert decision.chosen_worker_id == "w-a"
    assert decision.rejections["w-b"][0]["plugin"] == "NodeLimit"


def test_a_forgotten_change_only_makes_the_index_stale():
    # documents the contract: the index reads a ledger once per window until told
    fleet = _fleet()
    index = CandidateIndex(fleet)
    default_pipeline().decide(request(), index)
    _fill(fleet[1].ledger, "filler")
    assert default_pipeline().decide(request(), index).chosen_worker_id == "w-b"  # stale
    # another window is read afresh
    other = request(hold_end=T0 + 2 * HOUR + HOUR)
    assert default_pipeline().decide(other, index) == default_pipeline().decide(other, fleet)


def test_replace_add_and_remove_workers():
    index = CandidateIndex(_fleet())
    index.replace(candidate("w-a", state="DRAINING"))
    index.replace(candidate("w-d", license_type="ENTERPRISE", max_nodes=100))
    assert index.worker_ids == ("w-a", "w-b", "w-c", "w-d")
    decision = default_pipeline().decide(request(), index)
    assert decision.rejections["w-a"][0]["plugin"] == "WorkerState"
    index.remove("w-b")
    assert default_pipeline().decide(request(), index).candidates == ["w-a", "w-c", "w-d"]
    with pytest.raises(KeyError):
        index.remove("w-b")
    with pytest.raises(KeyError):
        index.ledger_changed("w-unknown")


def test_window_memory_is_bounded():
    index = CandidateIndex(_fleet(), max_windows=2)
    for hours in (1, 2, 3):
        default_pipeline().decide(request(hold_end=T0 + hours * HOUR), index)
    assert len(index._windows) == 2


def test_duplicate_worker_ids_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        CandidateIndex([candidate("w"), candidate("w")])


def test_groups_by_license_in_input_order():
    index = CandidateIndex(_fleet() + [candidate("w-e", license_type="ENTERPRISE")])
    assert [c.worker_id for c in index.with_licenses(["ENTERPRISE", "PERSONAL"])] == ["w-a", "w-b", "w-e"]
    assert index.get("w-c").license_type == "EVALUATION"
    assert index.get("nope") is None
    assert len(index) == 4
