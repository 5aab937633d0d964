"""An exam wave: 200 two-node labs at 09:00 → 20 personal workers ahead of the start, gone after."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain.scaling import FleetWorker, ScalingSettings, StopWorker, WorkerState, plan
from tests.domain.scaling.builders import apply_scale_up, at, booking, kinds, personal, reservation_of

TPL = personal()  # 48 cpu / 192 GB / 500 GB / 20 nodes: nodes bind, 10 labs per worker
START = 60  # 09:00
WAVE = [booking(f"exam-{k:03d}", START, 120) for k in range(200)]


def test_wave_is_planned_for_at_once_and_launched_boot_time_ahead() -> None:
    # Launched so that a failed boot's replacement (another 20-minute launch) is still
    # ready 5 min before 09:00: ready by 08:35, launched at 08:15.
    early = plan(at(0), [], [TPL], WAVE)
    assert kinds(early) == ["NoAction"]
    (deferred,) = early.deferred
    assert (deferred.count, deferred.launch_at, deferred.needed_by) == (20, at(15), at(45))
    assert early.next_decision_at == at(15)

    due = plan(at(15), [], [TPL], WAVE)
    (launch,) = due.launches
    assert launch.template == "personal-standard" and launch.count == 20
    assert launch.needed_by == at(45)  # 09:00 - 15 min instantiation lead
    assert at(15) + 2 * timedelta(minutes=TPL.startup_minutes) <= at(START)  # room for one replacement
    assert len(launch.covers) == 200 and "late" not in launch.reason
    assert due.inputs["demand"]["queued_peak"]["nodes"] == 400
    assert due.inputs["per_template"]["personal-standard"]["launch_now"] == 20

    # Planning again once the workers are pending launches nothing more.
    fleet = apply_scale_up(due, [], [TPL])
    again = plan(at(21), fleet, [TPL], WAVE)
    assert again.launches == [] and again.deferred == ()


def _wave_fleet(state: WorkerState, *, active: bool) -> list[FleetWorker]:
    fleet = []
    for n in range(20):
        labs = WAVE[n * 10 : (n + 1) * 10]
        fleet.append(
            FleetWorker(
                worker_id=f"w{n:02d}",
                template_name=TPL.name,
                state=state,
                expected_ready_at=at(40),
                state_since=at(40),
                reservations=tuple(reservation_of(replace(lab, queued=False)) for lab in labs),
                active_instance_ids=tuple(lab.instance_id for lab in labs) if active else (),
                capacity=TPL.capacity,
                max_nodes=TPL.max_nodes,
                license_type=TPL.license_type,
            )
        )
    return fleet


def test_during_the_wave_nothing_is_scaled_down() -> None:
    result = plan(at(START + 60), _wave_fleet(WorkerState.RUNNING, active=True), [TPL], [])
    assert kinds(result) == ["NoAction"]


def test_after_the_wave_every_worker_stops() -> None:
    after = at(START + 120 + 30 + 1)  # holds ended (lab + teardown margin)
    result = plan(after, _wave_fleet(WorkerState.RUNNING, active=False), [TPL], [])
    assert [type(a) for a in result.actions] == [StopWorker] * 20


def test_after_the_wave_a_warm_minimum_stays() -> None:
    after = at(START + 120 + 30 + 1)
    settings = ScalingSettings(min_warm={TPL.name: 2})
    result = plan(after, _wave_fleet(WorkerState.RUNNING, active=False), [TPL], [], settings)
    assert len(result.of_type(StopWorker)) == 18
