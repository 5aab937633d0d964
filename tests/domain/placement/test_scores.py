"""BinPacking on its own: fuller workers score higher, over the window only."""

from __future__ import annotations

import pytest

from domain.placement.plugins.scores import BinPacking
from domain.resources import Resources
from tests.domain.placement.builders import HOUR, T0, candidate, ledger, request, reserve


def _score(busy=None, **request_overrides) -> float:
    return BinPacking().score(request(**request_overrides), candidate(ledger=busy))


def test_empty_worker_scores_the_request_alone():
    # cpu 2/16, memory 8/64, nodes 5/20: mean of 0.125, 0.125, 0.25
    assert _score() == pytest.approx(16.6667)


def test_fuller_worker_scores_higher():
    half_full = reserve(ledger(), "other", cpu=8, memory=32, nodes=10)
    assert _score(half_full) > _score()
    assert _score(half_full) == pytest.approx(100 * (10 / 16 + 40 / 64 + 15 / 20) / 3, abs=1e-4)


def test_only_the_window_counts():
    busy_later = reserve(ledger(), "later", cpu=8, memory=32, nodes=10, start=T0 + 2 * HOUR, end=T0 + 4 * HOUR)
    assert _score(busy_later) == _score()


def test_the_peak_instant_counts_not_the_sum():
    busy = ledger()
    reserve(busy, "first", cpu=8, start=T0, end=T0 + HOUR)
    reserve(busy, "second", cpu=8, start=T0 + HOUR, end=T0 + 2 * HOUR)
    assert _score(busy) == pytest.approx(100 * (10 / 16 + 8 / 64 + 5 / 20) / 3, abs=1e-4)


@pytest.mark.parametrize(
    ("requirements", "nodes", "expected"),
    [(Resources(0, 0, 0), 0, 0.0), (Resources(16, 64, 500), 20, 100.0)],
)
def test_score_is_bounded(requirements, nodes, expected):
    assert _score(requirements=requirements, node_count=nodes) == expected


def test_storage_does_not_count():
    assert _score(requirements=Resources(2, 8, 400)) == _score(requirements=Resources(2, 8, 1))


def test_weight_defaults_to_one():
    assert BinPacking().weight == 1.0
    assert BinPacking(weight=2.5).weight == 2.5
