"""Hedged boots: a spare is booted in parallel exactly when a boot holding booked labs has
less slack before its first start than one replacement boot, and never otherwise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.scaling import LaunchWorker, RestartWorker, ScalingSettings, StopWorker, plan
from domain.scaling.hedging import merge_launches
from tests.domain.scaling.builders import at, booking, personal, worker

CHEAP = personal("personal-standard", startup=20, restart=5)


def hedges(result) -> list:
    return [a for a in result.launches + result.restarts if "hedge" in a.reason]


@settings(max_examples=150, deadline=None)
@given(
    ready=st.integers(min_value=0, max_value=60),  # the booting worker's expected ready, minutes from now
    start=st.integers(min_value=1, max_value=90),  # its first booked lab's slot start
    asap=st.booleans(),
)
def test_a_hedge_is_launched_exactly_when_the_slack_is_less_than_one_boot(ready: int, start: int, asap: bool) -> None:
    lab = booking("a", start, queued=False, asap=asap)
    booting = worker("w1", "PROVISIONING", ready_at=at(ready), holds=[lab])
    result = plan(at(0), [booting], [CHEAP], [lab])
    slack = start - max(ready, 0)
    at_risk = not asap and slack < CHEAP.startup_minutes  # no stopped worker: the replacement is a launch
    can_help = start >= CHEAP.startup_minutes  # a spare launched now is up by the start
    expected = 1 if at_risk and can_help else 0
    assert sum(a.count for a in hedges(result)) == expected, (slack, result.to_dict())
    if expected:
        assert hedges(result)[0].needed_by == at(start)


def test_no_hedge_without_a_boot_or_a_deadline() -> None:
    lab = booking("a", 10, queued=False)
    assert hedges(plan(at(0), [worker("w1", holds=[lab])], [CHEAP], [lab])) == []  # RUNNING: no boot to fail
    empty = worker("w2", "PROVISIONING", ready_at=at(15))
    assert hedges(plan(at(0), [empty], [CHEAP], [])) == []  # a boot holding nothing has no deadline


def test_a_boot_timed_with_the_replacement_lead_is_not_hedged() -> None:
    # launched at 08:15 for a 09:00 start: ready 08:35, 25 min = margin + one launch
    lab = booking("a", 60, queued=False)
    booting = worker("w1", "PROVISIONING", ready_at=at(35), holds=[lab])
    assert hedges(plan(at(15), [booting], [CHEAP], [lab])) == []


def test_a_spare_stopped_worker_is_restarted_as_the_hedge_and_counts_for_the_replacement() -> None:
    lab = booking("a", 8, queued=False)
    booting = worker("w1", "PROVISIONING", ready_at=at(5), holds=[lab])  # slack 3 min < a 5-min restart
    result = plan(at(0), [booting, worker("s1", "STOPPED")], [CHEAP], [lab])
    assert [(type(a), getattr(a, "worker_id", None)) for a in hedges(result)] == [(RestartWorker, "s1")]
    # 6 min of slack covers a restart of the spare stopped worker: no hedge
    roomy = worker("w1", "PROVISIONING", ready_at=at(2), holds=[lab])
    assert hedges(plan(at(0), [roomy, worker("s1", "STOPPED")], [CHEAP], [lab])) == []


def test_a_spare_already_there_is_kept_and_nothing_more_is_launched() -> None:
    lab = booking("a", 25, queued=False)
    booting = worker("w1", "PROVISIONING", ready_at=at(15), holds=[lab])
    spare = worker("w2")  # RUNNING, holding nothing: the scale-down alone would stop it
    result = plan(at(0), [booting, spare], [CHEAP], [lab])
    assert hedges(result) == []
    assert not [a for a in result.actions if isinstance(a, StopWorker) and a.worker_id == "w2"]
    # without boots at risk the same idle worker is stopped
    calm = worker("w1", "PROVISIONING", ready_at=at(0), holds=[lab])
    stopped = plan(at(0), [calm, spare], [CHEAP], [lab])
    assert [a.worker_id for a in stopped.actions if isinstance(a, StopWorker)] == ["w2"]


def test_hedging_can_be_turned_off() -> None:
    lab = booking("a", 25, queued=False)
    booting = worker("w1", "PROVISIONING", ready_at=at(15), holds=[lab])
    assert hedges(plan(at(0), [booting], [CHEAP], [lab], ScalingSettings(hedge_boots=False))) == []


def test_a_hedge_launch_joins_the_launch_of_its_template() -> None:
    base = LaunchWorker(template="t", count=2, covers=("a",), reason="2 queued")
    hedge = LaunchWorker(template="t", count=1, reason="hedge: x")
    other = LaunchWorker(template="u", count=1, reason="hedge: y")
    merged = merge_launches([base], [hedge, other])
    assert [(a.template, a.count, a.covers) for a in merged] == [("t", 3, ("a",)), ("u", 1, ())]
    assert merged[0].reason == "2 queued; hedge: x"
