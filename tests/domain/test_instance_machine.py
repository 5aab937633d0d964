"""Random LabletInstance lifecycles (hypothesis): the aggregate follows the SPEC table, refuses
everything else without recording, and replaying its stored events rebuilds the same object."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.context import CommandContext
from domain.errors import IllegalTransition, InvalidInput
from domain.instance import (
    CAPACITY_HOLDING_STATES,
    MAX_INSTANTIATION_RETRIES,
    TERMINATION_REASONS,
    InstanceRequirements,
    InstanceState,
    LabletInstance,
    ScoreReport,
)
from domain.timeslot import Timeslot

S = InstanceState
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

# The SPEC §3.3 table (independent copy) and, per command, the states it may start from.
SPEC_TABLE = {
    S.PENDING: {S.SCHEDULED, S.TERMINATED},
    S.SCHEDULED: {S.INSTANTIATING, S.PENDING, S.TERMINATED},
    S.INSTANTIATING: {S.READY, S.INSTANTIATING, S.TERMINATED},
    S.READY: {S.RUNNING, S.COLLECTING, S.STOPPING, S.TERMINATED},
    S.RUNNING: {S.COLLECTING, S.STOPPING, S.TERMINATED},
    S.COLLECTING: {S.GRADING, S.STOPPING, S.TERMINATED},
    S.GRADING: {S.STOPPING, S.TERMINATED},
    S.STOPPING: {S.STOPPED, S.TERMINATED},
    S.STOPPED: {S.RUNNING, S.ARCHIVED, S.TERMINATED},
    S.ARCHIVED: {S.TERMINATED},
    S.TERMINATED: set(),
}
PORT_NAMES = ("serial_1", "vnc_1")


def mapper() -> Mapper[str]:
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)


def rebuild(events: list[Any]) -> Any:
    """Replay through the store's JSON transcoding: ``Created.mutate(None)``, then each ``mutate``."""
    m = mapper()
    aggregate = None
    for event in events:
        aggregate = m.to_domain_event(m.to_stored_event(event)).mutate(aggregate)
    return aggregate


class InstanceLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.at = T0
        self.history: list[Any] = []
        self.instance: LabletInstance

    @initialize(grading=st.booleans())
    def requested(self, grading: bool) -> None:
        requirements = InstanceRequirements(2, 4, 10, 2, PORT_NAMES, ("PERSONAL",), max_duration_minutes=60)
        self.instance = LabletInstance.request_with(
            definition_name="lab", definition_version="1.2.3", requirements=requirements, grading_enabled=grading,
            owner_id="u", timeslot=Timeslot(None, T0 + timedelta(hours=1)), ctx=self.ctx(),
        )
        self.grading = grading
        self.collect()

    def ctx(self) -> CommandContext:
        return CommandContext(at=self.at, actor="machine")

    def collect(self) -> list[Any]:
        events = list(self.instance.collect_events())
        self.history.extend(events)
        return events

    def attempt(self, action: Any, allowed: bool, target: InstanceState | None, noop: bool = False) -> None:
        """Run a command and check it did exactly what the table says."""
        before, version = self.instance.state, self.instance.version
        self.at += timedelta(minutes=1)
        if noop:
            action(self.ctx())
            assert self.collect() == [] and self.instance.state is before
            return
        if not allowed:
            with pytest.raises(IllegalTransition):
                action(self.ctx())
            assert self.instance.state is before and self.instance.version == version
            assert self.collect() == []
            return
        action(self.ctx())
        events = self.collect()
        assert events
        after = self.instance.state
        if target is not None:
            assert after is target
        assert after is before or after in SPEC_TABLE[before]

    def commands(self) -> dict[str, tuple[bool, Any, InstanceState | None]]:
        """Every command: (allowed now by the SPEC table, action, state it leads to)."""
        i, state = self.instance, self.instance.state
        attempt_running = state is S.INSTANTIATING and not i.awaiting_retry
        exhausted = i.retry_count >= MAX_INSTANTIATION_RETRIES
        report = ScoreReport(7, 10, 6, True, ({"name": "s1", "score": 7},), None)
        return {
            "schedule": (state is S.PENDING, lambda c: i.schedule(
                "Worker-9", {"serial_1": 2000, "vnc_1": 2001}, self.at, self.at + timedelta(hours=2),
                f"d-{i.version}", c), S.SCHEDULED),
            "unschedule": (state is S.SCHEDULED, lambda c: i.unschedule("worker_lost", c), S.PENDING),
            "start_instantiation": (state is S.SCHEDULED or (state is S.INSTANTIATING and i.awaiting_retry),
                                    lambda c: i.start_instantiation(i.instantiation_attempt + 1, c), S.INSTANTIATING),
            "record_lab_imported": (attempt_running, lambda c: i.record_lab_imported("lab-x", c), S.INSTANTIATING),
            "record_lab_started": (attempt_running, lambda c: i.record_lab_started(c), S.INSTANTIATING),
            "instantiation_failed": (attempt_running, lambda c: i.instantiation_failed("boom", c),
                                     S.TERMINATED if exhausted else S.INSTANTIATING),
            "mark_ready": (attempt_running, lambda c: i.mark_ready({"url": "https://lds"}, c), S.READY),
            "login": (state in {S.READY, S.STOPPED}, lambda c: i.login(c), S.RUNNING),
            "restart": (state is S.STOPPED, lambda c: i.restart(c), S.RUNNING),
            "start_collection": (state in {S.READY, S.RUNNING} and self.grading, lambda c: i.start_collection(c),
                                 S.COLLECTING),
            "start_grading": (state is S.COLLECTING, lambda c: i.start_grading({"id": "g"}, c), S.GRADING),
            "complete_grading": (state is S.GRADING, lambda c: i.complete_grading(report, c), S.STOPPING),
            "fail_grading": (state is S.GRADING, lambda c: i.fail_grading("timeout", c), S.STOPPING),
            "request_stop": (state in {S.READY, S.RUNNING, S.COLLECTING, S.GRADING},
                             lambda c: i.request_stop("timeslot_end", c), S.STOPPING),
            "mark_stopped": (state is S.STOPPING, lambda c: i.mark_stopped(c), S.STOPPED),
            "archive": (state is S.STOPPED, lambda c: i.archive(c), S.ARCHIVED),
        }

    # Repeats that at-least-once delivery produces: allowed, and record nothing.
    def no_ops(self) -> dict[str, Any]:
        i, state = self.instance, self.instance.state
        return {
            "login": (state is S.RUNNING, lambda c: i.login(c)),
            "request_stop": (state is S.STOPPING, lambda c: i.request_stop("again", c)),
            "start_instantiation": (state is S.INSTANTIATING and not i.awaiting_retry,
                                    lambda c: i.start_instantiation(i.instantiation_attempt, c)),
            "schedule": (state is S.SCHEDULED, lambda c: i.schedule(
                "Worker-9", i.allocated_ports, self.at, self.at + timedelta(hours=1), i.placement_decision_id, c)),
        }

    @rule(data=st.data())
    def a_legal_command(self, data: st.DataObject) -> None:
        legal = sorted(name for name, (ok, _, _) in self.commands().items() if ok)
        if legal:
            name = data.draw(st.sampled_from(legal), label="command")
            _, action, target = self.commands()[name]
            self.attempt(action, True, target)

    @rule(data=st.data())
    def an_illegal_command(self, data: st.DataObject) -> None:
        state = self.instance.state
        repeats = {"login"} if state is S.RUNNING else {"request_stop"} if state is S.STOPPING else set()
        illegal = sorted(name for name, (ok, _, _) in self.commands().items() if not ok and name not in repeats)
        if illegal:
            name = data.draw(st.sampled_from(illegal), label="command")
            _, action, target = self.commands()[name]
            self.attempt(action, False, target)

    @rule(data=st.data())
    def a_repeated_command(self, data: st.DataObject) -> None:
        repeats = sorted(name for name, (ok, _) in self.no_ops().items() if ok)
        if repeats:
            name = data.draw(st.sampled_from(repeats), label="repeat")
            self.attempt(self.no_ops()[name][1], True, None, noop=True)

    # Termination is possible from everywhere: rare, so the other paths get explored too.
    @rule(reason=st.sampled_from(sorted(TERMINATION_REASONS) + [None, "bogus"]), dice=st.integers(0, 9))
    def terminate(self, reason: str | None, dice: int) -> None:
        if dice:
            return
        i = self.instance
        allowed = i.state is not S.TERMINATED
        valid = reason in TERMINATION_REASONS or (reason is None and i.state is S.ARCHIVED)
        if allowed and not valid:
            with pytest.raises(InvalidInput):
                i.terminate(reason, self.ctx())
            assert self.collect() == []
            return
        self.attempt(lambda c: i.terminate(reason, c), allowed, S.TERMINATED)

    @invariant()
    def rebuilt_from_its_events_equals_the_live_object(self) -> None:
        assert rebuild(self.history) == self.instance

    @invariant()
    def derived_flags_agree_with_the_state(self) -> None:
        i = self.instance
        assert i.holds_capacity is (i.state in CAPACITY_HOLDING_STATES)
        assert i.retry_count <= MAX_INSTANTIATION_RETRIES
        assert i.entered_at(i.state) is not None
        if i.holds_capacity:
            assert set(i.allocated_ports) >= set(PORT_NAMES) and i.worker_id is not None
        if i.state is S.PENDING:
            assert i.worker_id is None and i.allocated_ports == {}
        if i.state is S.TERMINATED:
            assert i.termination_reason in TERMINATION_REASONS


InstanceLifecycle.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestInstanceLifecycle = InstanceLifecycle.TestCase


def test_rebuild_check_detects_a_divergent_object() -> None:
    """The replay invariant can fail: an instance changed outside its events is told apart."""
    machine = InstanceLifecycle()
    machine.requested(grading=True)
    machine.attempt(machine.commands()["schedule"][1], True, S.SCHEDULED)
    machine.rebuilt_from_its_events_equals_the_live_object()
    machine.instance.allocated_ports["serial_1"] = 9999  # a mutation no event explains
    with pytest.raises(AssertionError):
        machine.rebuilt_from_its_events_equals_the_live_object()


def test_flag_check_detects_an_inconsistent_object() -> None:
    machine = InstanceLifecycle()
    machine.requested(grading=True)
    machine.instance.state = S.RUNNING  # holds capacity but was never placed
    with pytest.raises(AssertionError):
        machine.derived_flags_agree_with_the_state()


def test_machine_catches_a_command_that_ignores_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """If ``archive`` skipped its table check, the machine's expectation would fail."""
    monkeypatch.setattr(LabletInstance, "_require", lambda self, target, action, sources=None: None)
    machine = InstanceLifecycle()
    machine.requested(grading=True)
    with pytest.raises(BaseException) as error:  # noqa: PT011 - pytest.fail raises Failed
        machine.attempt(machine.commands()["archive"][1], False, S.ARCHIVED)
    assert "DID NOT RAISE" in str(error.value)

