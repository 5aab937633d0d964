"""Scale-down rules of the default policy, one row per rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from domain.scaling import ForceTerminateLeftovers, ScalingSettings, StopWorker, plan
from tests.domain.scaling.builders import at, booking, personal, worker

TPL = personal(drain_hours=4)
NOW = 120  # minutes after T0


def held(start_min: float, duration: float = 60, name: str = "x") -> object:
    return booking(name, start_min, duration, queued=False)


@dataclass
class Row:
    name: str
    fleet: list
    expected: list  # (action kind, worker id)
    settings: ScalingSettings = field(default_factory=ScalingSettings)


ROWS = [
    Row("running with no reservation at all stops", [worker("w1")], [("StopWorker", "w1")]),
    Row("running with only ended reservations stops", [worker("w1", holds=[held(0, 30)])], [("StopWorker", "w1")]),
    Row("a hold covering now keeps it", [worker("w1", holds=[held(NOW - 10)])], []),
    Row("an active lab with no hold (overrun) keeps it", [worker("w1", active=["lab"])], []),
    Row("a hold starting within the grace period keeps it", [worker("w1", holds=[held(NOW + 40)])], []),
    Row(
        "idle until a hold beyond the break-even: stop (restarted in time), never drain",
        [worker("w1", holds=[held(NOW + 120)])],
        [("StopWorker", "w1")],
    ),
    Row(
        "idle until a far hold, stopping between reservations off: stays up, never drains",
        [worker("w1", holds=[held(NOW + 120)])],
        [],
        ScalingSettings(stop_between_reservations=False),
    ),
    Row(
        "a hold beyond a short grace but within the break-even: stays up",
        [worker("w1", holds=[held(NOW + 40)])],
        [],
        ScalingSettings(grace_period=__import__("datetime").timedelta(minutes=10)),
    ),
    Row(
        "the break-even counts the replacement lead: without it the same gap pays for a stop",
        [worker("w1", holds=[held(NOW + 40)])],
        [("StopWorker", "w1")],
        ScalingSettings(grace_period=__import__("datetime").timedelta(minutes=10), replacement_lead=False),
    ),
    Row("draining, every hold ended, nothing active: stop", [worker("d1", "DRAINING", since=at(60), holds=[held(0, 30)])], [("StopWorker", "d1")]),
    Row("draining with an active lab: wait", [worker("d1", "DRAINING", since=at(60), active=["lab"])], []),
    Row("draining with a hold soon: wait", [worker("d1", "DRAINING", since=at(60), holds=[held(NOW + 40)])], []),
    Row(
        "draining, idle until a far hold: stop (restarted for it)",
        [worker("d1", "DRAINING", since=at(60), holds=[held(NOW + 100)])],
        [("StopWorker", "d1")],
    ),
    Row(
        "an admin's drain deadline passed with leftovers: force-terminate them, then stop",
        [worker("d1", "DRAINING", since=at(NOW - 241), active=["lab"], holds=[held(NOW - 10, name="y")],
                deadline=at(NOW - 1))],
        [("ForceTerminateLeftovers", "d1"), ("StopWorker", "d1")],
    ),
    Row(
        "draining for longer than the template's timeout but without a deadline: nothing is ended",
        [worker("d1", "DRAINING", since=at(NOW - 600), active=["lab"], holds=[held(NOW - 10, name="y")])],
        [],
    ),
    Row("an admin's deadline with nothing left: just stop",
        [worker("d1", "DRAINING", since=at(NOW - 241), deadline=at(NOW - 1))], [("StopWorker", "d1")]),
    Row("stopped beyond retention: terminate", [worker("s1", "STOPPED", since=at(NOW - 24 * 60 - 1))], [("TerminateWorker", "s1")]),
    Row("stopped within retention: keep (prefer stop over terminate)", [worker("s1", "STOPPED", since=at(NOW - 60))], []),
    Row(
        "stopped beyond retention but booked: keep",
        [worker("s1", "STOPPED", since=at(NOW - 24 * 60 - 1), holds=[held(NOW + 600)])],
        [],
    ),
    Row("pending and provisioning workers are never scaled down", [worker("p1", "PENDING", ready_at=at(NOW + 5)), worker("p2", "PROVISIONING", ready_at=at(NOW + 5))], []),
    Row("stopping, terminated and failed workers are left alone", [worker("a", "STOPPING"), worker("b", "TERMINATED"), worker("c", "FAILED")], []),
    Row(
        "min_warm keeps that many running workers",
        [worker("w1"), worker("w2"), worker("w3")],
        [("StopWorker", "w2"), ("StopWorker", "w3")],
        ScalingSettings(min_warm={"personal-standard": 1}),
    ),
    Row(
        "min_warm keeps the worker needed soonest",
        [worker("w1"), worker("w2", holds=[held(NOW + 120)])],
        [("StopWorker", "w1")],
        ScalingSettings(min_warm={"personal-standard": 1}),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_scale_down_rule(row: Row) -> None:
    result = plan(at(NOW), row.fleet, [TPL], [], row.settings)
    got = [(type(a).__name__, a.worker_id) for a in result.scale_down()]
    assert got == row.expected


def test_drain_timeout_lists_the_leftovers_and_the_reason() -> None:
    fleet = [worker("d1", "DRAINING", since=at(NOW - 300), active=["lab"], holds=[held(NOW - 10, name="y")],
                    deadline=at(NOW - 60))]
    result = plan(at(NOW), fleet, [TPL], [])
    (force,) = result.of_type(ForceTerminateLeftovers)
    assert force.instance_ids == ("lab", "y") and force.reason == "drain_timeout"
    (stop,) = result.of_type(StopWorker)
    assert stop.reason.startswith("drain_timeout")


def test_running_worker_needed_by_queued_demand_is_not_stopped() -> None:
    result = plan(at(NOW), [worker("w1")], [TPL], [booking("a", NOW + 20)])
    assert result.scale_down() == []
