"""The instantiation trigger: at timeslot_start - lead (ASAP at once) a SCHEDULED instance
goes INSTANTIATING with its lab YAML rewritten and stored; driven by a virtual clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ruamel.yaml import YAML

from adapters.artifacts.blocking import BlockingArtifactStore
from adapters.artifacts.local import LocalArtifactStore
from adapters.clock import VirtualClock
from adapters.eventstore import EventStore
from domain.definition import LabletDefinition
from domain.instance import InstanceRequirements, InstanceState, LabletInstance
from domain.timeslot import Timeslot
from processors.commands.definitions import DefinitionService
from processors.scheduler import Scheduler, SchedulerSettings, instance_lab_yaml_key
from tests.scheduler.support import ADMIN, T0, new_instance, new_worker, template

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def test_instantiation_starts_at_the_lead_time_and_not_before(store: EventStore, clock: VirtualClock) -> None:
    store.save(new_worker())
    booked = new_instance(T0 + timedelta(hours=2))
    asap = new_instance(None)
    store.save(booked, asap)
    settings = SchedulerSettings(instantiation_lead=timedelta(minutes=20), rescan_interval=timedelta(hours=3))
    scheduler = Scheduler(store, clock, settings=settings)

    assert scheduler.run_until_idle().instantiated == 1  # the ASAP one, right after placement
    assert store.get(asap.id).state is InstanceState.INSTANTIATING
    assert scheduler.next_wake() == T0 + timedelta(hours=1, minutes=40)

    clock.set(T0 + timedelta(hours=1, minutes=39, seconds=59))
    assert scheduler.run_until_idle().instantiated == 0
    assert store.get(booked.id).state is InstanceState.SCHEDULED
    clock.advance(timedelta(seconds=1))
    assert scheduler.run_until_idle().instantiated == 1
    started = store.get(booked.id)
    assert started.state is InstanceState.INSTANTIATING and started.instantiation_attempt == 1
    assert started.entered_at(InstanceState.INSTANTIATING) == T0 + timedelta(hours=1, minutes=40)
    assert not scheduler.run_until_idle().acted  # at-least-once: nothing twice


def test_the_rewritten_lab_yaml_is_stored_and_named_in_the_event(
    store: EventStore, clock: VirtualClock, tmp_path: Path
) -> None:
    artifacts = BlockingArtifactStore(LocalArtifactStore(tmp_path / "artifacts"))
    try:
        directory = SAMPLES / "ccna-basic-routing"
        spec = YAML(typ="safe", pure=True).load((directory / "definition.yaml").read_text())
        lab_yaml = (directory / spec["lab_yaml"]).read_text()
        fields = {k: v for k, v in spec.items() if k != "lab_yaml"}
        published = DefinitionService(store, artifacts).publish(fields, ADMIN, lab_yaml=lab_yaml).version
        definition: LabletDefinition = store.get(LabletDefinition.stream_id_for(published.name))
        requirements = InstanceRequirements.from_definition(definition.versions[published.version])
        worker = new_worker(template(license_type="PERSONAL", ports=(5000, 5099)))
        worker_template_nested = worker.template.nested_virt
        assert worker_template_nested
        instance = LabletInstance.request_with(
            definition_name=published.name, definition_version=published.version, requirements=requirements,
            grading_enabled=False, owner_id="alice", timeslot=Timeslot(None, T0 + timedelta(hours=1)), ctx=ADMIN,
        )
        store.save(worker, instance)

        Scheduler(store, clock, artifacts=artifacts).run_until_idle()

        started = store.get(instance.id)
        assert started.state is InstanceState.INSTANTIATING
        assert started.lab_yaml_uri == artifacts.uri_for(instance_lab_yaml_key(instance.id))
        text = artifacts.get(started.lab_yaml_uri).decode()
        assert "${" not in text
        for port in started.allocated_ports.values():
            assert str(port) in text
    finally:
        artifacts.close()
