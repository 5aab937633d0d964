"""Random interleavings of what users, graders, admins and time do, with controller passes
and controller restarts in between: after every pass, CML and the worker's ledger agree
with each instance's state."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import DomainError
from domain.instance import CAPACITY_HOLDING_STATES, InstanceState, LabletInstance, ScoreReport
from processors.ports.cml import LabStatus
from tests.lifecycle.conftest import World

S = InstanceState
WITH_A_RUNNING_LAB = frozenset({S.READY, S.RUNNING, S.GRADING})


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(Path(tempfile.mkdtemp(prefix="lrm-machine-")))
        self.controller = self.world.controller()
        self.ids: list[str] = []
        self.passes = 0

    def teardown(self) -> None:
        self.world.close()

    # -- the outside world ----------------------------------------------------------------
    def _act(self, index: int, action: str) -> None:
        instance: LabletInstance = self.world.instance(self.ids[index % len(self.ids)])
        ctx = self.world.ctx("test:outside")
        try:
            if action == "login":
                instance.login(ctx)
            elif action == "stop":
                instance.request_stop("user_request", ctx)
            elif action == "restart":
                instance.restart(ctx, reason="admin_request")
            elif action == "collect":
                instance.start_collection(ctx, trigger="api")
            elif action == "graded":
                instance.complete_grading(ScoreReport(score=1, max_score=1, cut_score=1, passed=True), ctx)
            elif action == "grading_failed":
                instance.fail_grading("grader error", ctx)
            elif action == "terminate":
                held_on = instance.worker_id if instance.holds_capacity else None
                instance.terminate("admin", ctx)
                worker = self.world.worker(held_on) if held_on else None
                if worker is not None and worker.release(instance.id, ctx, reason="terminated"):
                    self.world.store.save(instance, worker)
                    return
        except DomainError:
            return  # not allowed in its state: nothing happens, as through the API
        self.world.store.save(instance)

    @precondition(lambda self: len([i for i in self.ids if self.world.instance(i).is_live]) < 4)
    @rule(minutes=st.sampled_from([30, 60]))
    def book(self, minutes: int) -> None:
        instance_id = self.world.book(start_in=None, minutes=minutes)
        self.world.instantiate(instance_id)
        self.ids.append(instance_id)

    @precondition(lambda self: bool(self.ids))
    @rule(index=st.integers(0, 20),
          action=st.sampled_from(["login", "stop", "restart", "collect", "graded", "grading_failed", "terminate"]))
    def outside(self, index: int, action: str) -> None:
        self._act(index, action)

    @rule(minutes=st.sampled_from([1, 10, 31, 61]))
    def time_passes(self, minutes: int) -> None:
        self.world.clock.advance(timedelta(minutes=minutes))

    @rule()
    def controller_restarts(self) -> None:
        self.controller = self.world.controller()

    @rule()
    def controller_pass(self) -> None:
        self.world.run(self.controller)
        self.passes += 1
        self.check()

    # -- what must hold after a pass ---------------------------------------------------------
    def check(self) -> None:
        labs = self.world.labs()
        ledger = self.world.worker().ledger
        for instance_id in self.ids:
            instance = self.world.instance(instance_id)
            mine = [lab_id for lab_id, title in labs.items() if title == instance_id]
            assert (instance_id in ledger) == (instance.state in CAPACITY_HOLDING_STATES), (
                instance_id, instance.state)
            if not instance.is_live:
                assert mine == [], (instance.state, mine)
            elif instance.state in WITH_A_RUNNING_LAB:
                assert len(mine) == 1, (instance.state, mine)
                lab = self.world.cml._labs[self.world.worker_id][mine[0]]  # type: ignore[attr-defined]
                assert lab.status(0.0) is LabStatus.STARTED, instance.state
            elif instance.state is S.STOPPED:
                assert len(mine) == 1, (instance.state, mine)
            assert instance.state not in (S.COLLECTING, S.STOPPING, S.ARCHIVED), (
                f"{instance.state} is left behind by a pass")
        assert set(labs.values()) <= set(self.ids)

    @invariant()
    def never_more_than_one_lab_per_instance(self) -> None:
        titles = list(self.world.labs().values())
        assert len(titles) == len(set(titles))


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])
