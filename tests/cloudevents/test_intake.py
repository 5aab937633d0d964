"""CloudEventIntake without HTTP: two replicas racing on one event act once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from adapters.eventstore.factory import open_event_store
from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.timeslot import Timeslot
from processors.commands.cloudevents import CloudEventIntake, IncomingCloudEvent, ReadModelInbox

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def ctx(actor: str = "grader:g") -> CommandContext:
    return CommandContext(at=T0, actor=actor)


def grading_instance(store) -> str:  # noqa: ANN001
    c = ctx("system")
    instance = LabletInstance.request_with(
        definition_name="lab", definition_version="1.0.0",
        requirements=InstanceRequirements(cpu_cores=1, memory_gb=1, storage_gb=1, node_count=1),
        grading_enabled=True, owner_id="alice", timeslot=Timeslot(None, T0 + timedelta(hours=1)), ctx=c,
    )
    instance.schedule("Worker-1", {}, T0, T0 + timedelta(hours=2), "d", c)
    instance.start_instantiation(1, c)
    instance.record_lab_imported("lab", c)
    instance.record_lab_started(c)
    instance.mark_ready({}, c)
    instance.login(c)
    instance.start_collection(c)
    instance.start_grading({}, c)
    store.save(instance)
    return instance.id


class RaceOnFirstSave:
    """Lets ``other`` act completely between this replica's load and its first save."""

    def __init__(self, store, other) -> None:  # noqa: ANN001
        self.store, self.other, self.raced = store, other, False

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.store, name)

    def save(self, *aggregates):  # noqa: ANN002, ANN201
        if not self.raced:
            self.raced = True
            self.other()
        return self.store.save(*aggregates)


def test_two_replicas_racing_on_one_event_act_once():
    store = open_event_store("memory")
    inbox = ReadModelInbox(MemoryReadModelStore())  # the shared read-model database
    instance_id = grading_instance(store)
    event = IncomingCloudEvent(id="r-1", source="urn:grader", type="grading.session.failed",
                               subject=instance_id, data={"reason": "timeout"})
    replica_b = CloudEventIntake(store, inbox, lambda _: None)
    outcomes = []
    racing = RaceOnFirstSave(store, lambda: outcomes.append(replica_b.ingest(event, ctx())))
    replica_a = CloudEventIntake(racing, inbox, lambda _: None)

    outcomes.append(replica_a.ingest(event, ctx()))

    assert [o.result for o in outcomes] == ["accepted", "duplicate"]  # B acted, A saw B's effect
    failed = [s for s in store.read_stream(instance_id) if isinstance(s.event, LabletInstance.GradingFailed)]
    assert len(failed) == 1 and failed[0].event.metadata["causation_id"] == "r-1"
    assert replica_a.ingest(event, ctx()).result == "duplicate"


def test_a_refused_event_releases_its_claim():
    store = open_event_store("memory")
    inbox = ReadModelInbox(MemoryReadModelStore())
    instance_id = grading_instance(store)
    intake = CloudEventIntake(store, inbox, lambda _: None)
    bad = IncomingCloudEvent(id="g-1", source="urn:grader", type="grading.session.completed",
                             subject=instance_id, data={"score": 1})
    try:
        intake.ingest(bad, ctx())
        raise AssertionError("accepted an unusable score report")
    except Exception as error:  # noqa: BLE001
        assert getattr(error, "status", None) == 400
    assert inbox.get("urn:grader", "g-1") is None
    fixed = IncomingCloudEvent(id="g-1", source="urn:grader", type="grading.session.completed",
                               subject=instance_id, data={"score": 1, "max_score": 2, "cut_score": 1, "passed": True})
    assert intake.ingest(fixed, ctx()).result == "accepted"
    assert store.get(instance_id).score_report.score == 1
