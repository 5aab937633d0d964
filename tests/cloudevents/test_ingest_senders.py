"""Incoming CloudEvents are checked against who sent them (issue 16).

The regression: a service token that booked nothing sent ``lds.session.started`` and
``lds.session.ended`` for another user's lab and moved it to RUNNING, then COLLECTING,
although ``POST /instances/{id}/login`` answers that token 404. Now the event answers the
same 404 and the lab does not move; bindings decide who may send which types from which
sources, and which grader grades which lab.
"""

from __future__ import annotations

import pytest

from processors.commands.cloudevent_senders import IngestionPolicy, SenderBinding
from tests.cloudevents.api_support import (
    API,
    AUTH,
    BATCH,
    GRADER,
    LDS,
    SCORE,
    TO_READY,
    post_structured,
    ready_instance,
    request_instance,
    state_of,
    step,
    structured,
)
from tests.cloudevents.api_support import started_app as _started_app
from tests.deployment.conftest import postgres_database  # noqa: F401 - a fixture

GRADERS = {"types": ["grading.session.*"], "definitions": ["ccna-*"], "senders": ["grader:grader"]}


# One app per configuration: every test works on labs of its own.
@pytest.fixture(scope="module")
def unbound(tmp_path_factory):
    """No bindings at all: the REST rules alone."""
    with _started_app(tmp_path_factory.mktemp("unbound"), cloudevent_senders=[]) as pair:
        yield pair


@pytest.fixture(scope="module")
def bound(tmp_path_factory):
    """The service token is the LDS (bound to its source); grader:grader grades ccna-* labs."""
    from tests.cloudevents.api_support import LDS_BINDING

    with _started_app(tmp_path_factory.mktemp("bound"), cloudevent_senders=[LDS_BINDING, GRADERS]) as pair:
        yield pair


def test_a_service_that_booked_nothing_cannot_move_another_users_lab(unbound):
    """The exact scenario of the issue, and its REST equivalent side by side."""
    _the_issue_scenario(*unbound)


def test_the_issue_scenario_on_postgresql(tmp_path, postgres_database):  # noqa: F811
    with _started_app(tmp_path, cloudevent_senders=[], store="postgres", store_url=postgres_database) as pair:
        _the_issue_scenario(*pair)


def _the_issue_scenario(client, container) -> None:  # noqa: ANN001
    instance_id = ready_instance(container)  # requested by user:alice
    before = container.store.max_position()

    rest = client.post(f"{API}/instances/{instance_id}/login", headers=AUTH["intruder"])
    assert rest.status_code == 404
    for event_type in ("lds.session.started", "lds.session.ended"):
        answer = post_structured(client, structured(event_type, subject=instance_id,
                                                    data={"session_id": "lds-session-1"}), auth="intruder")
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["detail"] == rest.json()["detail"]  # the same answer as REST
    assert state_of(container, instance_id) == "READY"
    assert container.store.max_position() == before


def test_found_by_session_id_is_no_way_around_it(unbound):
    client, container = unbound
    instance_id = ready_instance(container, session_id="lds-77")
    answer = post_structured(client, structured("lds.session.started", data={"session_id": "lds-77"}),
                             auth="intruder")
    assert answer.status_code == 404
    assert state_of(container, instance_id) == "READY"


def test_in_a_batch_the_foreign_lab_is_rejected_and_the_others_go_on(unbound):
    import json

    client, container = unbound
    foreign = ready_instance(container)
    events = [structured("lds.session.started", subject=foreign), structured("ccm.other.thing")]
    answer = client.post(f"{API}/cloudevents", content=json.dumps(events), headers={**BATCH, **AUTH["intruder"]})
    assert answer.status_code == 202
    first, second = answer.json()["results"]
    assert first["result"] == "rejected" and first["problem"]["status"] == 404
    assert second["result"] == "ignored"
    assert state_of(container, foreign) == "READY"


def test_the_service_that_requested_the_lab_may_drive_it_as_over_rest(unbound):
    client, container = unbound
    mine = _instance_requested_by(container, "service:intruder")
    answer = post_structured(client, structured("lds.session.started", subject=mine), auth="intruder")
    assert answer.status_code == 202, answer.text
    assert state_of(container, mine) == "RUNNING"


def _instance_requested_by(container, actor: str) -> str:  # noqa: ANN001
    """A READY lab of bob's, booked by ``actor`` (e.g. an exam system's service token)."""
    instance_id = request_instance(container, owner="bob", requested_by=actor)
    step(container, instance_id, *TO_READY)
    return instance_id


def test_a_role_that_may_never_log_in_gets_403(unbound):
    client, container = unbound
    instance_id = ready_instance(container)
    answer = post_structured(client, structured("lds.session.started", subject=instance_id), auth="grader")
    assert answer.status_code == 403
    assert state_of(container, instance_id) == "READY"


def test_grading_results_need_a_grader(unbound):
    client, container = unbound
    instance_id = ready_instance(container)
    step(container, instance_id, "login", "collect", "grading")
    answer = post_structured(client, structured("grading.session.completed", source=GRADER, subject=instance_id,
                                                data=SCORE), auth="service")
    assert answer.status_code == 403
    assert state_of(container, instance_id) == "GRADING"


def test_a_bound_sender_drives_any_lab_but_only_from_its_source(bound):
    client, container = bound
    instance_id = ready_instance(container)
    wrong = post_structured(client, structured("lds.session.started", source="urn:lds:elsewhere",
                                               subject=instance_id), auth="service")
    assert wrong.status_code == 403 and wrong.json()["errors"][0]["field"] == "source"
    right = post_structured(client, structured("lds.session.started", source=LDS, subject=instance_id),
                            auth="service")
    assert right.status_code == 202 and state_of(container, instance_id) == "RUNNING"


def test_a_binding_is_exclusive_even_for_the_service_that_booked(bound):
    client, container = bound
    mine = _instance_requested_by(container, "service:intruder")
    answer = post_structured(client, structured("lds.session.ended", subject=mine), auth="intruder")
    assert answer.status_code == 404
    assert state_of(container, mine) == "READY"


def test_only_the_assigned_grader_grades_the_lab(bound):
    client, container = bound
    instance_id = ready_instance(container)  # definition ccna-lab: grader:grader is assigned
    step(container, instance_id, "login", "collect", "grading")
    result = structured("grading.session.completed", source=GRADER, subject=instance_id, data=SCORE)
    other = post_structured(client, result, auth="grader2")
    assert other.status_code == 404 and state_of(container, instance_id) == "GRADING"
    assigned = post_structured(client, result, auth="grader")
    assert assigned.status_code == 202 and state_of(container, instance_id) == "STOPPING"
    # The other grader learns nothing from re-sending the same id either.
    again = post_structured(client, result, auth="grader2")
    assert again.json()["results"][0]["instance_id"] is None


def test_admin_may_send_anything(bound):
    client, container = bound
    instance_id = ready_instance(container)
    answer = post_structured(client, structured("lds.session.started", source="urn:admin:tool",
                                                subject=instance_id), auth="admin")
    assert answer.status_code == 202


# -- the policy on its own --------------------------------------------------------------------
def _authorize(policy: IngestionPolicy, actor: str, event_type: str, *, source: str = LDS,
               definition: str = "ccna-lab", owner: str = "alice", requested_by: str = "user:alice") -> None:
    policy.authorize(actor=actor, event_type=event_type, source=source, instance_id="LabletInstance-x",
                     definition_name=definition, owner_id=owner, requested_by=lambda: requested_by)


def test_bindings_apply_only_to_their_definitions():
    policy = IngestionPolicy.parse([GRADERS])
    _authorize(policy, "grader:other", "grading.session.failed", definition="devnet-lab")  # not assigned: any
    from domain.errors import NotFound

    with pytest.raises(NotFound):
        _authorize(policy, "grader:other", "grading.session.failed", definition="ccna-basic")


def test_unhandled_types_are_not_checked():
    _authorize(IngestionPolicy(), "service:x", "com.example.anything")


@pytest.mark.parametrize(
    "spec",
    [{"types": ["lds.session.*"]}, {"senders": ["service:lds"]}, {"types": ["x"], "senders": ["lds"]},
     {"types": ["x"], "senders": ["service:lds"], "colour": "red"}, {"types": [1], "senders": ["service:a"]}],
    ids=["no-senders", "no-types", "sender-without-role", "unknown-key", "not-strings"],
)
def test_bad_bindings_are_refused_at_start_up(spec):
    with pytest.raises(ValueError, match="LRM_CLOUDEVENT_SENDERS"):
        SenderBinding.parse(spec)
