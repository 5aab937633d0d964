"""LabletInstance: the SPEC §3.3 table, every command from every state, retries, timeslots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput
from domain.instance import (
    CAPACITY_HOLDING_STATES,
    MAX_INSTANTIATION_RETRIES,
    TERMINATION_REASONS,
    TRANSITIONS,
    InstanceRequirements,
    InstanceState,
    LabletInstance,
    ScoreReport,
)
from domain.timeslot import Timeslot, hold_window, validate_timeslot

S = InstanceState
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
CTX = CommandContext(at=T0, actor="tester")

# The SPEC §3.3 table, copied by hand so a slip in domain/instance.py is caught.
SPEC_TABLE = {
    "PENDING": {"SCHEDULED", "TERMINATED"},
    "SCHEDULED": {"INSTANTIATING", "PENDING", "TERMINATED"},
    "INSTANTIATING": {"READY", "INSTANTIATING", "TERMINATED"},
    "READY": {"RUNNING", "COLLECTING", "STOPPING", "TERMINATED"},
    "RUNNING": {"COLLECTING", "STOPPING", "TERMINATED"},
    "COLLECTING": {"GRADING", "STOPPING", "TERMINATED"},
    "GRADING": {"STOPPING", "TERMINATED"},
    "STOPPING": {"STOPPED", "TERMINATED"},
    "STOPPED": {"RUNNING", "ARCHIVED", "TERMINATED"},
    "ARCHIVED": {"TERMINATED"},
    "TERMINATED": set(),
}

REQUIREMENTS = InstanceRequirements(
    cpu_cores=4, memory_gb=8, storage_gb=20, node_count=3, port_names=("serial_1", "vnc_1"),
    license_affinity=("PERSONAL",), max_duration_minutes=120,
)
PORTS = {"serial_1": 2000, "vnc_1": 2001}
REPORT = ScoreReport(score=80, max_score=100, cut_score=70, passed=True, sections=({"name": "ospf", "score": 40},),
                     report_url="https://grader.example/r/1")


def new_instance(grading: bool = True) -> LabletInstance:
    return LabletInstance.request_with(
        definition_name="ccna-ospf", definition_version="1.0.0", requirements=REQUIREMENTS,
        grading_enabled=grading, owner_id="user-1", timeslot=Timeslot(T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        ctx=CTX, reservation_id="booking-7",
    )


def schedule(i: LabletInstance, ctx: CommandContext = CTX) -> None:
    i.schedule("Worker-1", PORTS, T0 + timedelta(minutes=45), T0 + timedelta(hours=2, minutes=30), "decision-1", ctx)


# How to reach each state from PENDING.
PATHS: dict[InstanceState, list[Callable[[LabletInstance, CommandContext], Any]]] = {
    S.PENDING: [],
    S.SCHEDULED: [schedule],
    S.INSTANTIATING: [schedule, lambda i, c: i.start_instantiation(1, c)],
}
PATHS[S.READY] = [*PATHS[S.INSTANTIATING], lambda i, c: i.mark_ready({"url": "https://lds/1"}, c)]
PATHS[S.RUNNING] = [*PATHS[S.READY], lambda i, c: i.login(c)]
PATHS[S.COLLECTING] = [*PATHS[S.RUNNING], lambda i, c: i.start_collection(c)]
PATHS[S.GRADING] = [*PATHS[S.COLLECTING], lambda i, c: i.start_grading({"id": "g-1"}, c)]
PATHS[S.STOPPING] = [*PATHS[S.READY], lambda i, c: i.request_stop("timeslot_end", c)]
PATHS[S.STOPPED] = [*PATHS[S.STOPPING], lambda i, c: i.mark_stopped(c)]
PATHS[S.ARCHIVED] = [*PATHS[S.STOPPED], lambda i, c: i.archive(c)]
PATHS[S.TERMINATED] = [lambda i, c: i.terminate("cancelled", c)]


def instance_in(state: InstanceState, grading: bool = True) -> LabletInstance:
    instance = new_instance(grading)
    for step in PATHS[state]:
        step(instance, CTX)
    assert instance.state is state
    instance.collect_events()
    return instance


# command name → (call, state it leads to (None: stays), states it is legal from, states where it is a no-op)
ALL = frozenset(S)
COMMANDS: dict[str, tuple[Callable[[LabletInstance], Any], InstanceState | None, frozenset, frozenset]] = {
    "schedule": (schedule, S.SCHEDULED, frozenset({S.PENDING}), frozenset({S.SCHEDULED})),
    "unschedule": (lambda i: i.unschedule("worker_lost", CTX), S.PENDING, frozenset({S.SCHEDULED}), frozenset()),
    "start_instantiation": (lambda i: i.start_instantiation(i.instantiation_attempt + 1, CTX), S.INSTANTIATING,
                            frozenset({S.SCHEDULED}), frozenset()),
    "record_lab_imported": (lambda i: i.record_lab_imported("lab-1", CTX), None, frozenset({S.INSTANTIATING}),
                            frozenset()),
    "record_lab_started": (lambda i: i.record_lab_started(CTX), None, frozenset({S.INSTANTIATING}), frozenset()),
    "instantiation_failed": (lambda i: i.instantiation_failed("import timed out", CTX), None,
                             frozenset({S.INSTANTIATING}), frozenset()),
    "mark_ready": (lambda i: i.mark_ready({"url": "u"}, CTX), S.READY, frozenset({S.INSTANTIATING}), frozenset()),
    "login": (lambda i: i.login(CTX), S.RUNNING, frozenset({S.READY, S.STOPPED}), frozenset({S.RUNNING})),
    "restart": (lambda i: i.restart(CTX), S.RUNNING, frozenset({S.STOPPED}), frozenset()),
    "start_collection": (lambda i: i.start_collection(CTX), S.COLLECTING, frozenset({S.READY, S.RUNNING}),
                         frozenset()),
    "start_grading": (lambda i: i.start_grading({"id": "g"}, CTX), S.GRADING, frozenset({S.COLLECTING}), frozenset()),
    "complete_grading": (lambda i: i.complete_grading(REPORT, CTX), S.STOPPING, frozenset({S.GRADING}), frozenset()),
    "fail_grading": (lambda i: i.fail_grading("grader down", CTX), S.STOPPING, frozenset({S.GRADING}), frozenset()),
    "request_stop": (lambda i: i.request_stop("admin", CTX), S.STOPPING,
                     frozenset({S.READY, S.RUNNING, S.COLLECTING, S.GRADING}), frozenset({S.STOPPING})),
    "mark_stopped": (lambda i: i.mark_stopped(CTX), S.STOPPED, frozenset({S.STOPPING}), frozenset()),
    "archive": (lambda i: i.archive(CTX), S.ARCHIVED, frozenset({S.STOPPED}), frozenset()),
    "terminate": (lambda i: i.terminate("admin", CTX), S.TERMINATED, ALL - {S.TERMINATED}, frozenset()),
}

CASES = [(name, state) for name in COMMANDS for state in S]


def test_transition_table_is_the_spec_table() -> None:
    assert {s.value: {t.value for t in nexts} for s, nexts in TRANSITIONS.items()} == SPEC_TABLE


@pytest.mark.parametrize(("command", "state"), CASES, ids=[f"{c}-from-{s.value}" for c, s in CASES])
def test_every_command_from_every_state(command: str, state: InstanceState) -> None:
    call, target, legal, noop = COMMANDS[command]
    instance = instance_in(state)
    version = instance.version
    if state in legal:
        call(instance)
        events = instance.collect_events()
        assert events, "a legal command records at least one event"
        after = instance.state
        assert after is (target or state)
        assert after.value in SPEC_TABLE[state.value] or after is state
    elif state in noop:
        call(instance)
        assert instance.collect_events() == []
        assert instance.state is state
    else:
        with pytest.raises(IllegalTransition):
            call(instance)
        assert instance.state is state
        assert instance.version == version
        assert instance.collect_events() == []


def test_every_spec_edge_is_reachable_by_a_command() -> None:
    reached = {(s.value, target.value) for _, target, legal, _ in COMMANDS.values() if target for s in legal}
    reached.add(("INSTANTIATING", "INSTANTIATING"))  # a retry: tested in test_retries_*
    spec_edges = {(s, t) for s, nexts in SPEC_TABLE.items() for t in nexts}
    assert reached == spec_edges


def test_collection_refused_when_the_definition_has_no_grading() -> None:
    instance = instance_in(S.RUNNING, grading=False)
    with pytest.raises(IllegalTransition, match="no grading"):
        instance.start_collection(CTX)
    instance.request_stop("timeslot_end", CTX)
    assert instance.state is S.STOPPING


def test_retries_at_most_three_then_terminates_with_max_retries_exceeded() -> None:
    instance = instance_in(S.INSTANTIATING)
    for attempt in range(2, MAX_INSTANTIATION_RETRIES + 2):
        assert instance.instantiation_failed(f"failure {attempt - 1}", CTX) is True
        assert instance.state is S.INSTANTIATING and instance.awaiting_retry
        with pytest.raises(IllegalTransition):
            instance.mark_ready({}, CTX)  # no attempt is running
        instance.start_instantiation(attempt, CTX)
    assert instance.retry_count == MAX_INSTANTIATION_RETRIES
    assert instance.instantiation_failed("failure 4", CTX) is False
    assert instance.state is S.TERMINATED
    assert instance.termination_reason == "max_retries_exceeded"
    names = [e.event_name for e in instance.collect_events()]
    assert names.count("InstantiationStarted") == MAX_INSTANTIATION_RETRIES
    assert names[-2:] == ["InstantiationFailed", "InstanceTerminated"]


def test_retry_needs_the_next_attempt_number_and_repeats_are_no_ops() -> None:
    instance = instance_in(S.INSTANTIATING)
    instance.start_instantiation(1, CTX)  # delivered twice
    assert instance.collect_events() == []
    instance.instantiation_failed("boom", CTX)
    with pytest.raises(Conflict):
        instance.start_instantiation(3, CTX)
    instance.start_instantiation(2, CTX)
    assert instance.instantiation_attempt == 2 and not instance.awaiting_retry


def test_a_retry_after_success_is_refused() -> None:
    instance = instance_in(S.READY)
    with pytest.raises(IllegalTransition):
        instance.start_instantiation(2, CTX)


@pytest.mark.parametrize("state", sorted(ALL - {S.ARCHIVED, S.TERMINATED}, key=lambda s: s.value))
def test_forced_termination_needs_a_known_reason(state: InstanceState) -> None:
    instance = instance_in(state)
    with pytest.raises(InvalidInput):
        instance.terminate(None, CTX)
    with pytest.raises(InvalidInput):
        instance.terminate("because", CTX)
    instance.terminate("worker_lost", CTX, detail="host vanished")
    (event,) = instance.collect_events()
    assert event.forced is True and event.previous_state == state.value
    assert event.released_ports == (PORTS if state in CAPACITY_HOLDING_STATES else {})


def test_termination_after_archive_is_normal_and_defaults_to_completed() -> None:
    instance = instance_in(S.ARCHIVED)
    instance.terminate(None, CTX)
    (event,) = instance.collect_events()
    assert (event.reason, event.forced, event.released_ports) == ("completed", False, {})


def test_termination_reasons_are_the_spec_set() -> None:
    assert {"cancelled", "instantiation_failed", "max_retries_exceeded", "worker_lost", "drain_timeout",
            "admin"} <= TERMINATION_REASONS


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.value)
def test_capacity_is_held_from_scheduled_until_archived_or_terminated(state: InstanceState) -> None:
    instance = instance_in(state)
    assert instance.holds_capacity is (state not in {S.PENDING, S.ARCHIVED, S.TERMINATED})
    assert instance.is_live is (state not in {S.ARCHIVED, S.TERMINATED})


def test_phase_timestamps_come_from_the_commands_context() -> None:
    instance = new_instance()
    at = T0
    for step in PATHS[S.ARCHIVED]:
        at += timedelta(minutes=7)
        step(instance, CommandContext(at=at, actor="controller"))
    assert instance.entered_at(S.PENDING) == T0
    assert instance.entered_at(S.SCHEDULED) == T0 + timedelta(minutes=7)
    assert instance.entered_at(S.ARCHIVED) == at
    assert instance.entered_at(S.COLLECTING) is None


def test_grading_completed_keeps_the_score_report_and_moves_to_stopping() -> None:
    instance = instance_in(S.GRADING)
    instance.complete_grading(REPORT, CTX)
    assert instance.score_report == REPORT and instance.state is S.STOPPING and instance.stop_reason == "graded"


def test_login_from_stopped_is_a_restart() -> None:
    instance = instance_in(S.STOPPED)
    instance.login(CTX, session_id="s-2", source="lds")
    (event,) = instance.collect_events()
    assert event.restart is True and instance.state is S.RUNNING


def test_schedule_requires_a_port_for_each_placeholder() -> None:
    instance = new_instance()
    with pytest.raises(InvalidInput, match="vnc_1"):
        instance.schedule("Worker-1", {"serial_1": 2000}, T0, T0 + timedelta(hours=1), "d", CTX)


def test_unschedule_clears_the_placement() -> None:
    instance = instance_in(S.SCHEDULED)
    instance.unschedule("worker_lost", CTX)
    (event,) = instance.collect_events()
    assert event.previous_worker_id == "Worker-1" and event.released_ports == PORTS
    assert (instance.worker_id, instance.allocated_ports, instance.hold_start) == (None, {}, None)


def test_hold_extension_is_recorded_only_when_later() -> None:
    instance = instance_in(S.RUNNING)
    instance.record_hold_extended(instance.hold_end - timedelta(minutes=5), CTX)
    assert instance.collect_events() == []
    later = instance.hold_end + timedelta(hours=1)
    instance.record_hold_extended(later, CTX)
    assert instance.hold_end == later
    with pytest.raises(IllegalTransition):
        instance_in(S.PENDING).record_hold_extended(later, CTX)


# -- timeslots and hold windows --------------------------------------------------------------

H = timedelta(hours=1)
M = timedelta(minutes=1)
TIMESLOT_CASES = [
    # start, end, duration, expected (start, end) or error field
    (None, T0 + H, None, (None, T0 + H)),
    (T0 - H, T0 + H, None, (None, T0 + H)),  # past start → ASAP
    (T0, T0 + H, None, (None, T0 + H)),  # start == now → ASAP
    (T0 + H, T0 + 2 * H, None, (T0 + H, T0 + 2 * H)),
    (T0 + H, None, 30, (T0 + H, T0 + H + 30 * M)),
    (None, None, 45, (None, T0 + 45 * M)),
    (T0 + H, None, None, (T0 + H, T0 + H + 120 * M)),  # neither: the maximum
    (T0 + H, T0 + H + 120 * M, None, (T0 + H, T0 + H + 120 * M)),  # exactly the maximum
    (T0 + H, T0 + H + 121 * M, None, "timeslot_end"),
    (T0 + H, T0 + H, None, "timeslot_end"),
    (T0 + H, T0, None, "timeslot_end"),
    (None, T0 - M, None, "timeslot_end"),
    (T0 + H, T0 + 2 * H, 30, "duration_minutes"),
    (None, None, 0, "duration_minutes"),
    (None, None, 121, "timeslot_end"),
    (datetime(2026, 3, 1, 10), None, None, "timeslot_start"),  # naive
]


@pytest.mark.parametrize(("start", "end", "duration", "expected"), TIMESLOT_CASES)
def test_validate_timeslot(start: Any, end: Any, duration: Any, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(InvalidInput) as error:
            validate_timeslot(start, end, now=T0, max_duration_minutes=120, duration_minutes=duration)
        assert error.value.field == expected
    else:
        slot = validate_timeslot(start, end, now=T0, max_duration_minutes=120, duration_minutes=duration)
        assert (slot.start, slot.end) == expected


HOLD_CASES = [
    (None, T0 + H, (T0, T0 + H + 30 * M)),  # ASAP starts now
    (T0 + H, T0 + 2 * H, (T0 + 45 * M, T0 + 2 * H + 30 * M)),
    (T0 + 10 * M, T0 + H, (T0, T0 + H + 30 * M)),  # lead already begun → now
]


@pytest.mark.parametrize(("start", "end", "expected"), HOLD_CASES)
def test_hold_window(start: Any, end: datetime, expected: tuple[datetime, datetime]) -> None:
    assert hold_window(start, end, T0) == expected


def test_hold_window_with_custom_lead_and_margin() -> None:
    assert hold_window(T0 + H, T0 + 2 * H, T0, timedelta(minutes=20), timedelta(0)) == (T0 + 40 * M, T0 + 2 * H)


# -- score report ------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    {"score": 101, "max_score": 100, "cut_score": 70, "passed": True},
    {"score": -1, "max_score": 100, "cut_score": 70, "passed": False},
    {"score": 1, "max_score": 0, "cut_score": 0, "passed": False},
    {"score": 1, "max_score": 10, "cut_score": 5, "passed": "yes"},
    {"score": 1, "max_score": 10, "passed": False},
])
def test_score_report_validation(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        ScoreReport.from_dict(data)


def test_score_report_round_trip() -> None:
    assert ScoreReport.from_dict(REPORT.to_dict()) == REPORT


# -- events survive the store's JSON transcoder and rebuild the same aggregate -------------------

def transcoder_mapper() -> Mapper[str]:
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)


def test_events_round_trip_through_json_and_rebuild_the_same_instance() -> None:
    instance = new_instance()
    for step in PATHS[S.GRADING]:
        step(instance, CTX)
    instance.complete_grading(REPORT, CTX)
    instance.mark_stopped(CTX)
    instance.archive(CTX)
    instance.terminate(None, CTX)
    events = instance.collect_events()
    mapper = transcoder_mapper()
    decoded = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]
    assert [vars(d) for d in decoded] == [vars(e) for e in events]
    rebuilt = None
    for event in decoded:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt == instance
    assert [e.event_name for e in events] == [
        "InstanceRequested", "InstanceScheduled", "InstantiationStarted", "InstanceReady", "UserLoggedIn",
        "CollectionStarted", "GradingStarted", "GradingCompleted", "InstanceStopped", "InstanceArchived",
        "InstanceTerminated",
    ]
    assert all(e.metadata["actor"] == "tester" for e in events)


def test_caller_chosen_ids_keep_the_category_prefix() -> None:
    kwargs: dict[str, Any] = dict(definition_name="d", definition_version="1.0.0", requirements=REQUIREMENTS,
                                  grading_enabled=False, owner_id="u", timeslot=Timeslot(None, T0 + timedelta(hours=1)),
                                  ctx=CTX)
    fixed = "LabletInstance-00000000-0000-0000-0000-000000000001"
    assert LabletInstance.request_with(instance_id=fixed, **kwargs).id == fixed
    with pytest.raises(InvalidInput):
        LabletInstance.request_with(instance_id="booking-1", **kwargs)
    with pytest.raises(InvalidInput):
        LabletInstance.request_with(**{**kwargs, "owner_id": ""})


def test_request_pins_the_definition_version_and_snapshots_its_requirements() -> None:
    from domain.definition import DefinitionSpec, LabletDefinition

    class Analysis:
        title, node_count, placeholders = "t", 5, frozenset({"serial_1"})

    spec = DefinitionSpec.from_dict({
        "name": "ccna", "form_qualified_name": "F", "lab_yaml_uri": "file:///lab.yaml", "max_duration_minutes": 60,
        "resource_requirements": {"cpu_cores": 3, "memory_gb": 6, "storage_gb": 9, "nested_virt": True,
                                  "ami": {"name_pattern": "CML-2.9.*", "min_version": "2.9.0"}},
        "port_template": [{"name": "serial_1", "protocol": "serial"}], "license_affinity": ["ENTERPRISE"],
    })
    version = LabletDefinition.create(spec, "c" * 64, Analysis(), CTX).version_for_new_instance(None)
    slot = validate_timeslot(T0 + timedelta(hours=2), None, now=T0, max_duration_minutes=60, duration_minutes=30)
    instance = LabletInstance.request(version, "user-9", slot, CTX, reservation_id="r-1")
    assert (instance.definition_name, instance.definition_version, instance.grading_enabled) == ("ccna", "1.0.0", False)
    assert instance.requirements == InstanceRequirements(
        cpu_cores=3, memory_gb=6, storage_gb=9, node_count=5, port_names=("serial_1",), license_affinity=("ENTERPRISE",),
        nested_virt=True, ami_name_pattern="CML-2.9.*", ami_min_version="2.9.0", max_duration_minutes=60)
    assert (instance.timeslot_start, instance.timeslot_end) == (T0 + timedelta(hours=2), T0 + timedelta(hours=2.5))
    (event,) = instance.collect_events()
    assert event.requirements["port_names"] == ["serial_1"] and event.reservation_id == "r-1"
