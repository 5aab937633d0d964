"""The timed rules: when each state counts as stuck, with what outcome; timed lifecycle steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.context import CommandContext
from domain.instance import InstanceRequirements, InstanceState, LabletInstance
from domain.timeslot import Timeslot
from processors.instances.policy import Outcome, Step, next_look, scheduled_step, watchdog_deadline
from processors.instances.settings import DEFAULT_TIMEOUTS, LifecycleSettings

S = InstanceState
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SETTINGS = LifecycleSettings()
MIN = timedelta(minutes=1)


def ctx(minutes: float) -> CommandContext:
    return CommandContext(at=T0 + minutes * MIN, actor="test")


def instance(start: float | None = 60, end: float = 120, *, grading: bool = True) -> LabletInstance:
    requirements = InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=2, port_names=("serial_1",))
    return LabletInstance.request_with(
        definition_name="lab", definition_version="1.0.0", requirements=requirements, grading_enabled=grading,
        owner_id="alice", timeslot=Timeslot(T0 + start * MIN if start is not None else None, T0 + end * MIN),
        ctx=ctx(0),
    )


def advance(i: LabletInstance, to: InstanceState, at: float) -> LabletInstance:
    """Walk ``i`` along the happy path up to ``to``, every step at minute ``at``."""
    path = [S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.GRADING, S.STOPPING, S.STOPPED,
            S.ARCHIVED]
    c = ctx(at)
    for state in path[: path.index(to) + 1] if to in path else []:
        if state is S.SCHEDULED:
            i.schedule("Worker-1", {"serial_1": 2000}, T0, T0 + 200 * MIN, "d", c)
        elif state is S.INSTANTIATING:
            i.start_instantiation(1, c)
        elif state is S.READY:
            i.mark_ready({"login_url": "x"}, c)
        elif state is S.RUNNING:
            i.login(c)
        elif state is S.COLLECTING:
            i.start_collection(c)
        elif state is S.GRADING:
            i.start_grading({"session_id": "g"}, c)
        elif state is S.STOPPING:
            i.fail_grading("x", c)
        elif state is S.STOPPED:
            i.mark_stopped(c)
        elif state is S.ARCHIVED:
            i.archive(c)
    return i


@pytest.mark.parametrize(
    ("state", "entered", "expected_minute", "outcome"),
    [
        # queued: counts from the timeslot start (60), capped by its end (120)
        (S.PENDING, 0, 120, Outcome.TERMINATE),
        # due at start - lead = 45; 30 min later
        (S.SCHEDULED, 10, 75, Outcome.TERMINATE),
        (S.INSTANTIATING, 50, 140, Outcome.TERMINATE),
        # READY before the timeslot: the no-show clock starts at the timeslot (60) + 30
        (S.READY, 50, 90, Outcome.NO_SHOW),
        (S.READY, 70, 100, Outcome.NO_SHOW),
        # RUNNING: the timeslot end (120) + 30
        (S.RUNNING, 70, 150, Outcome.TERMINATE),
        (S.COLLECTING, 121, 151, Outcome.TERMINATE),
        (S.GRADING, 122, 182, Outcome.GRADING_TIMEOUT),
        (S.STOPPING, 130, 160, Outcome.TERMINATE),
        (S.STOPPED, 131, 161, Outcome.TERMINATE),  # stopped by grading: archive due at once
        (S.ARCHIVED, 132, 162, Outcome.TERMINATE),
    ],
)
def test_every_non_final_state_has_a_deadline(state: InstanceState, entered: float, expected_minute: float,
                                               outcome: Outcome) -> None:
    i = advance(instance(), state, entered)
    assert i.state is state
    deadline = watchdog_deadline(i, SETTINGS)
    assert deadline is not None
    assert (deadline.state, deadline.at, deadline.outcome) == (state, T0 + expected_minute * MIN, outcome)
    assert deadline.explanation


def test_all_non_final_states_have_a_default_timeout() -> None:
    assert set(DEFAULT_TIMEOUTS) == set(S) - {S.TERMINATED}


def test_terminated_has_no_deadline() -> None:
    i = instance()
    i.terminate("cancelled", ctx(1))
    assert watchdog_deadline(i, SETTINGS) is None and next_look(i, SETTINGS) is None


def test_an_asap_instance_counts_from_when_it_was_scheduled() -> None:
    i = advance(instance(start=None, end=60), S.SCHEDULED, 5)
    deadline = watchdog_deadline(i, SETTINGS)
    assert deadline is not None and deadline.at == T0 + 5 * MIN + SETTINGS.timeout(S.SCHEDULED)


def test_stuck_explanations_say_where_and_why() -> None:
    i = advance(instance(), S.INSTANTIATING, 50)
    i.record_lab_imported("lab-1", ctx(51))
    i.instantiation_failed("CmlWaitTimeout: not booted", ctx(60))
    deadline = watchdog_deadline(i, SETTINGS)
    assert deadline is not None
    assert "INSTANTIATING" in deadline.explanation and "not booted" in deadline.explanation
    assert "retries 1" in deadline.explanation


@pytest.mark.parametrize(
    ("reason", "archive_at"),
    [("user_request", 120), ("admin_request", 120), ("no_show", 95), ("graded", 95)],
)
def test_a_lab_stopped_on_request_waits_for_its_timeslot_end_before_archiving(reason: str, archive_at: float) -> None:
    i = advance(instance(), S.RUNNING, 70)
    i.request_stop(reason, ctx(90))
    i.mark_stopped(ctx(95))
    step = scheduled_step(i)
    assert step is not None and step.step is Step.ARCHIVE and step.at == T0 + archive_at * MIN


def test_ready_and_running_end_with_their_timeslot() -> None:
    for state in (S.READY, S.RUNNING):
        step = scheduled_step(advance(instance(), state, 50))
        assert step is not None and (step.step, step.at) == (Step.END_OF_TIMESLOT, T0 + 120 * MIN)
    assert next_look(advance(instance(), S.RUNNING, 70), SETTINGS) == T0 + 120 * MIN


def test_timeouts_are_overridden_by_state_name_in_minutes() -> None:
    settings = SETTINGS.with_timeouts({"ready": 5, "GRADING": 1.5})
    assert settings.timeout(S.READY) == timedelta(minutes=5)
    assert settings.timeout(S.GRADING) == timedelta(minutes=1.5)
    assert settings.timeout(S.RUNNING) == DEFAULT_TIMEOUTS[S.RUNNING]


@pytest.mark.parametrize("bad", [{"NOPE": 5}, {"TERMINATED": 5}, {"READY": 0}, {"READY": -1}, {"READY": "5"},
                                 {"READY": True}])
def test_bad_timeouts_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SETTINGS.with_timeouts(bad)
