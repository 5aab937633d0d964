"""A hypothesis state machine drives workers through the API (and the controller through the
domain) and checks every answer against a model of SPEC §3.4: legal commands are 202 and show
in the read model, illegal ones are 409 and append nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, precondition, rule

from api.container import Container
from domain.worker import Worker
from tests.api.test_templates_support import ADMIN, API, NOW, control_client, head, reserve, system_ctx

ACTIONS = {
    # action: (states it is legal in, state after)
    "drain": ({"RUNNING"}, "DRAINING"),
    "cancel-drain": ({"DRAINING"}, "RUNNING"),
    "stop": ({"RUNNING", "DRAINING"}, "STOPPING"),
}


class WorkersThroughTheApi(RuleBasedStateMachine):
    workers = Bundle("workers")

    # One app for every example (starting one costs more than an example): each example
    # provisions its own workers and only looks at those.
    shared: tuple[TestClient, Container] | None = None

    def __init__(self) -> None:
        super().__init__()
        assert self.shared is not None, "the module fixture starts the app"
        self.client, self.container = self.shared
        self.state: dict[str, str] = {}
        self.active: set[str] = set()  # workers holding a reservation active now

    def teardown(self) -> None:
        if self.state:
            self.read_model_matches_the_model()

    @rule(target=workers, template=st.sampled_from(["personal-standard", "enterprise-large"]))
    def provision(self, template: str) -> str:
        response = self.client.post(f"{API}/workers", headers=ADMIN, json={"template": template})
        assert response.status_code == 201, response.text
        worker_id = response.json()["id"]
        self.state[worker_id] = "PENDING"
        return worker_id

    @rule(worker_id=workers)
    def controller_reports_ready(self, worker_id: str) -> None:
        if self.state[worker_id] != "PENDING":
            return
        worker: Worker = self.container.store.get(worker_id)
        ctx = system_ctx(self.container)
        worker.start_provisioning(f"i-{worker_id[-12:]}", ctx)
        worker.mark_ready("10.0.0.1", ctx)
        self.container.store.save(worker)
        self.state[worker_id] = "RUNNING"

    @rule(worker_id=workers)
    def scheduler_books_a_lab_now(self, worker_id: str) -> None:
        if self.state[worker_id] != "RUNNING":
            return
        reserve(self.container, worker_id, f"Instance-{uuid.uuid4()}", NOW - timedelta(minutes=1), 1)
        self.active.add(worker_id)

    @rule(worker_id=workers, action=st.sampled_from(sorted(ACTIONS)))
    def admin_acts(self, worker_id: str, action: str) -> None:
        legal_in, after = ACTIONS[action]
        legal = self.state[worker_id] in legal_in and not (action == "stop" and worker_id in self.active)
        before = head(self.container)
        response = self.client.post(f"{API}/workers/{worker_id}/{action}", headers=ADMIN)
        if legal:
            assert response.status_code == 202, response.text
            assert response.json()["position"] == head(self.container) > before
            self.state[worker_id] = after
        else:
            assert response.status_code == 409, response.text
            assert head(self.container) == before

    # A rule rather than an invariant: each check waits for the read model, and checking
    # now and then plus at the end finds the same bugs for a fraction of the time.
    @precondition(lambda self: bool(self.state))
    @rule()
    def read_model_matches_the_model(self) -> None:
        response = self.client.get(f"{API}/workers", headers=ADMIN,
                                   params={"min_position": head(self.container), "limit": 500})
        assert response.json()["next_cursor"] is None
        assert response.status_code == 200, response.text
        shown = {w["id"]: w["state"] for w in response.json()["items"] if w["id"] in self.state}
        assert shown == self.state


@pytest.fixture(scope="module", autouse=True)
def _one_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with control_client(tmp_path_factory.mktemp("machine")) as pair:
        WorkersThroughTheApi.shared = pair
        yield
    WorkersThroughTheApi.shared = None


WorkersThroughTheApi.TestCase.settings = settings(
    max_examples=10, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
)
TestWorkersThroughTheApi = WorkersThroughTheApi.TestCase
