"""Scale-up rules of the default policy, one row per rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from domain.resources import Resources
from domain.scaling import CancelDrain, LaunchWorker, RestartWorker, ScalingSettings, WorkerState, plan
from tests.domain.scaling.builders import at, booking, enterprise, kinds, launched, personal, worker

CHEAP = personal("personal-standard", cost=4.0)
PRICEY = personal("personal-fast", cost=6.0, startup=10)
NO_NESTED = personal("personal-cheap-no-nested", cost=2.0, nested_virt=False)
ENT = enterprise()


@dataclass
class Row:
    name: str
    now_min: float
    fleet: list
    demand: list
    templates: list = field(default_factory=lambda: [CHEAP])
    launched: dict = field(default_factory=dict)
    restarted: list = field(default_factory=list)
    kinds: list | None = None
    settings: ScalingSettings = field(default_factory=ScalingSettings)


ROWS = [
    Row("one queued booking launches one worker", 20, [], [booking("a", 60)], launched={"personal-standard": 1}),
    Row("room on a running worker: nothing to do", 20, [worker("w1")], [booking("a", 60)], kinds=["NoAction"]),
    Row(
        "a pending worker ready before the need is not duplicated",
        20,
        [worker("w1", "PENDING", ready_at=at(40))],
        [booking("a", 60)],
        kinds=["NoAction"],
    ),
    Row(
        "a provisioning worker late, but sooner than a new launch, is used",
        30,
        [worker("w1", "PROVISIONING", ready_at=at(48))],
        [booking("a", 60)],
        kinds=["NoAction"],
        settings=ScalingSettings(hedge_boots=False),
    ),
    Row(
        "once it holds the booking it is hedged: 12 min from its ready time to the start < one launch",
        30,
        [worker("w1", "PROVISIONING", ready_at=at(48), holds=[booking("a", 60, queued=False)])],
        [booking("a", 60, queued=False)],
        launched={"personal-standard": 1},
    ),
    Row(
        "a provisioning worker later than a new launch could be is not relied on",
        20,
        [worker("w1", "PROVISIONING", ready_at=at(90))],
        [booking("a", 60)],
        launched={"personal-standard": 1},
    ),
    Row(
        "a stopped worker is restarted before anything is launched",
        35,
        [worker("s1", "STOPPED")],
        [booking("a", 60)],
        restarted=["s1"],
    ),
    Row(
        "the cheapest template that fits is launched",
        20,
        [],
        [booking("a", 60)],
        templates=[PRICEY, CHEAP],
        launched={"personal-standard": 1},
    ),
    Row(
        "license affinity beats price",
        20,
        [],
        [booking("a", 60, affinity=["ENTERPRISE"])],
        templates=[CHEAP, ENT],
        launched={"enterprise-large": 1},
    ),
    Row(
        "nested virtualisation is required when asked",
        20,
        [],
        [booking("a", 60, nested_virt=True)],
        templates=[NO_NESTED, CHEAP],
        launched={"personal-standard": 1},
    ),
    Row(
        "more nodes than a personal licence allows → enterprise",
        20,
        [],
        [booking("a", 60, nodes=30)],
        templates=[CHEAP, ENT],
        launched={"enterprise-large": 1},
    ),
    Row(
        "a template that boots in time beats a cheaper one that would be late",
        30,
        [],
        [booking("a", 60)],
        templates=[CHEAP, PRICEY],
        launched={"personal-fast": 1},
    ),
    Row(
        "a draining worker with room is taken back",
        20,
        [worker("d1", "DRAINING", holds=[booking("x", 40, queued=False)])],
        [booking("a", 60)],
        kinds=["CancelDrain"],
    ),
    Row(
        "no drain cancellation when switched off",
        20,
        [worker("d1", "DRAINING", since=at(-10), holds=[booking("x", 40, queued=False)])],
        [booking("a", 60)],
        launched={"personal-standard": 1},
        settings=ScalingSettings(allow_cancel_drain=False),
    ),
    Row(
        "back-to-back waves share workers (packing over time, not per request)",
        20,
        [],
        [booking(f"a{k}", 60, 60) for k in range(10)] + [booking(f"b{k}", 60 + 200, 60) for k in range(10)],
        launched={"personal-standard": 1},
    ),
    Row(
        "overlapping waves need their sum",
        22,
        [],
        [booking(f"a{k}", 60, 120) for k in range(10)] + [booking(f"b{k}", 62, 60) for k in range(10)],
        launched={"personal-standard": 2},
    ),
    Row(
        "demand beyond the horizon waits",
        20,
        [],
        [booking("a", 60 * 30)],
        kinds=["NoAction"],
    ),
    Row(
        "min_warm launches up to the minimum",
        0,
        [],
        [],
        launched={"personal-standard": 2},
        settings=ScalingSettings(min_warm={"personal-standard": 2}),
    ),
    Row(
        "min_warm restarts stopped workers first",
        0,
        [worker("s1", "STOPPED")],
        [],
        launched={"personal-standard": 1},
        restarted=["s1"],
        settings=ScalingSettings(min_warm={"personal-standard": 2}),
    ),
    Row(
        "a booking on a stopped worker gets it restarted in time",
        35,
        [worker("s1", "STOPPED", holds=[booking("x", 60, queued=False)])],
        [],
        restarted=["s1"],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_scale_up_rule(row: Row) -> None:
    result = plan(at(row.now_min), row.fleet, row.templates, row.demand, row.settings)
    assert launched(result) == row.launched
    assert sorted(a.worker_id for a in result.restarts) == sorted(row.restarted)
    if row.kinds is not None:
        assert kinds(result) == row.kinds


def test_launch_waits_until_boot_time_plus_margin_requires_it() -> None:
    demand = [booking("a", 60)]  # needed by 08:45; 20 min boot + 5 min margin → launch at 08:20
    legacy = ScalingSettings(replacement_lead=False)
    early = plan(at(0), [], [CHEAP], demand, legacy)
    assert kinds(early) == ["NoAction"]
    assert [(d.template, d.count, d.launch_at, d.covers) for d in early.deferred] == [
        ("personal-standard", 1, at(20), ("a",))
    ]
    assert early.next_decision_at == at(20)
    due = plan(at(20), [], [CHEAP], demand, legacy)
    assert launched(due) == {"personal-standard": 1}
    assert due.launches[0].needed_by == at(45)


def test_launch_leaves_lead_for_one_replacement_boot() -> None:
    # Start 09:00: a replacement launch (20 min) must be ready by 08:55, so the first boot
    # must be ready (its failure known) by 08:35: launched at 08:15, 5 min before the need alone asks.
    (deferred,) = plan(at(0), [], [CHEAP], [booking("a", 60)]).deferred
    assert deferred.launch_at == at(15)
    # A restart with a spare stopped worker left: the replacement is a 5-minute restart,
    # which the instantiation lead already covers: restarted at 08:35 as without the lead.
    spare_plan = plan(at(0), [worker("s1", "STOPPED"), worker("s2", "STOPPED")], [CHEAP], [booking("a", 60)])
    assert [(d.restart_worker_id, d.launch_at) for d in spare_plan.deferred] == [("s1", at(35))]


def test_stopped_restart_is_deferred_until_restart_time_allows() -> None:
    legacy = ScalingSettings(replacement_lead=False)
    result = plan(at(0), [worker("s1", "STOPPED")], [CHEAP], [booking("a", 60)], legacy)
    assert kinds(result) == ["NoAction"]
    (deferred,) = result.deferred
    assert deferred.restart_worker_id == "s1"
    assert deferred.launch_at == at(60 - 15 - 5 - 5)
    # With the replacement lead (no other stopped worker: a 20-minute launch would replace it):
    # ready by 09:00 - 5 - 20 = 08:35, restarted at 08:30.
    (deferred,) = plan(at(0), [worker("s1", "STOPPED")], [CHEAP], [booking("a", 60)]).deferred
    assert deferred.launch_at == at(30)


def test_need_earlier_than_boot_launches_now_and_says_how_late() -> None:
    result = plan(at(0), [], [CHEAP], [booking("a", 20)])  # needed by 08:05, boot 20 min
    (launch,) = result.launches
    assert launch.count == 1
    assert "late by 15 min" in launch.reason
    assert result.inputs["late_minutes"] == {"a": 15.0}


def test_asap_request_is_needed_at_its_hold_start() -> None:
    result = plan(at(0), [], [CHEAP], [booking("a", 0, asap=True)])
    (launch,) = result.launches
    assert launch.needed_by == at(0)
    assert "late by 20 min" in launch.reason


def test_item_no_template_can_host_is_reported_not_launched() -> None:
    huge = booking("huge", 60, need=Resources(500, 8, 10))
    result = plan(at(20), [], [CHEAP], [huge, booking("a", 60)])
    assert result.unplaceable == ("huge",)
    assert launched(result) == {"personal-standard": 1}


def test_launch_reason_and_covers_name_the_instances() -> None:
    result = plan(at(20), [], [CHEAP], [booking("b", 60), booking("a", 60)])
    (launch,) = result.launches
    assert isinstance(launch, LaunchWorker)
    assert launch.covers == ("a", "b")
    assert "2 queued instance(s)" in launch.reason


def test_cancel_drain_covers_the_queued_instance() -> None:
    result = plan(at(20), [worker("d1", "DRAINING", holds=[booking("x", 40, queued=False)])], [CHEAP], [booking("a", 60)])
    (cancel,) = result.of_type(CancelDrain)
    assert cancel.worker_id == "d1" and cancel.covers == ("a",)
    assert not result.scale_down()


def test_restart_names_what_it_covers() -> None:
    result = plan(at(35), [worker("s1", "STOPPED")], [CHEAP], [booking("a", 60)])
    (restart,) = result.of_type(RestartWorker)
    assert restart.covers == ("a",) and restart.needed_by == at(45)


def test_full_running_worker_does_not_hide_the_shortfall() -> None:
    busy = [booking(f"x{k}", 30, 120, queued=False) for k in range(10)]  # 20 nodes: full
    result = plan(at(20), [worker("w1", WorkerState.RUNNING, holds=busy)], [CHEAP], [booking("a", 60)])
    assert launched(result) == {"personal-standard": 1}


def test_margin_zero_launches_exactly_boot_time_ahead() -> None:
    settings = ScalingSettings(scale_up_margin=timedelta(0), replacement_lead=False)
    assert kinds(plan(at(24), [], [CHEAP], [booking("a", 60)], settings)) == ["NoAction"]
    assert launched(plan(at(25), [], [CHEAP], [booking("a", 60)], settings)) == {"personal-standard": 1}
