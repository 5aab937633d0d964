"""The whole life of a lab driven by the controller: instantiate, READY, login, collect,
grade, stop, archive, terminate (simulated CML, virtual clock)."""

from __future__ import annotations

import json
from datetime import timedelta

from domain.instance import InstanceState, ScoreReport
from tests.lifecycle.conftest import WORKER_IP, World

S = InstanceState


def test_instantiation_imports_the_rewritten_lab_and_records_the_user_session(world: World) -> None:
    instance_id = world.book()
    world.instantiate(instance_id)
    world.run(world.controller())

    instance = world.instance(instance_id)
    assert instance.state is S.READY
    labs = world.labs()
    assert list(labs.values()) == [instance_id]
    assert instance.cml_lab_id in labs
    lab = world.cml._labs[world.worker_id][instance.cml_lab_id]  # type: ignore[attr-defined]
    tags = [tag for node in lab.topology.nodes for tag in getattr(node, "tags", ())]
    ports = instance.allocated_ports
    assert str(ports["serial_1"]) in " ".join(map(str, tags)) or tags == []
    session = instance.user_session
    assert session is not None
    assert session["login_url"] == f"https://{WORKER_IP}/lab/{instance.cml_lab_id}"
    assert session["devices"] == [
        {"name": "serial_1", "protocol": "telnet", "host": WORKER_IP, "port": ports["serial_1"]},
        {"name": "serial_2", "protocol": "telnet", "host": WORKER_IP, "port": ports["serial_2"]},
        {"name": "vnc_1", "protocol": "vnc", "host": WORKER_IP, "port": ports["vnc_1"]},
    ]
    consoles = session["consoles"]
    assert [(c["node"], c["line"]) for c in consoles] == sorted((n.spec.label, 0) for n in lab.nodes.values())
    for console in consoles:
        assert console["url"] == f"https://{WORKER_IP}/console/{console['key']}"
        assert console["open"] == f"open /{instance.cml_lab_id}/{console['node']}/0"
    assert world.events(instance_id)[-4:] == ["InstantiationStarted", "LabImported", "LabStarted", "InstanceReady"]


def test_a_graded_lab_goes_all_the_way_to_terminated_and_releases_its_worker(world: World) -> None:
    instance_id = world.book(start_in=timedelta(minutes=15), minutes=60)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    world.clock.advance(timedelta(minutes=16))
    world.login(instance_id)
    world.run(controller)
    assert world.instance(instance_id).state is S.RUNNING

    world.clock.advance(timedelta(minutes=60))  # the timeslot ends
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.GRADING
    session = instance.grading_session
    assert session is not None and session["grading_rules_uri"].startswith("s3://lrm-grading-rules/")
    evidence = json.loads(world.artifacts.get(session["evidence_uri"]))
    assert set(evidence["node_configs"]) == set(session["nodes"]) and evidence["node_configs"]

    report = ScoreReport(score=80, max_score=100, cut_score=70, passed=True)
    instance.complete_grading(report, world.ctx("grader:grd"))  # the CloudEvent intake's part
    world.store.save(instance)
    world.run(controller)

    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.termination_reason == "completed"
    assert world.events(instance_id)[-5:] == [
        "GradingCompleted", "InstanceStopped", "InstanceArchived", "InstanceTerminated",
    ][-5:] or world.events(instance_id)[-4:] == [
        "GradingCompleted", "InstanceStopped", "InstanceArchived", "InstanceTerminated"]
    assert world.labs() == {}
    assert instance_id not in world.worker().ledger
    stored = json.loads(world.artifacts.get(f"instances/{instance_id}/score-report.json"))
    assert stored["score"] == 80 and stored["passed"] is True
    assert controller.live_instances == []


def test_without_grading_the_timeslot_end_stops_the_lab(world: World) -> None:
    world.publish("no-grading", grading_rules_uri=None)
    instance_id = world.book(definition="no-grading", start_in=None, minutes=30)
    world.instantiate(instance_id)
    controller = world.controller()
    world.run(controller)
    world.login(instance_id)
    world.clock.advance(timedelta(minutes=30))
    world.run(controller)
    instance = world.instance(instance_id)
    assert instance.state is S.TERMINATED and instance.stop_reason == "timeslot_end"
    assert "CollectionStarted" not in world.events(instance_id)
    assert world.labs() == {}


def test_more_labs_than_the_concurrency_limit_with_a_new_event_loop_per_pass(world: World) -> None:
    from processors.instances import LifecycleSettings

    ids = [world.book(start_in=None) for _ in range(3)]
    for instance_id in ids:
        world.instantiate(instance_id)
    controller = world.controller(settings=LifecycleSettings(concurrency=2))
    world.run(controller)  # one asyncio.run per pass: the limit must not stick to the first loop
    for instance_id in ids:
        world.login(instance_id)
    world.run(controller)
    assert [world.instance(i).state for i in ids] == [S.RUNNING] * 3
    assert len(world.labs()) == 3
