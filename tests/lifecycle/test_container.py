"""Wired as ``lablet serve`` wires it: the API's services, the scheduler and the controller
agree on the events (the scheduler's rewritten lab YAML URI is what gets imported)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from adapters.clock import VirtualClock
from api.container import Container
from api.settings import Settings
from domain.context import CommandContext
from domain.instance import InstanceState
from domain.worker import Worker
from processors.commands.instances import Caller, InstanceRequest
from tests.lifecycle.conftest import DEFINITION, NOW, SAMPLES


def test_scheduler_then_controller_bring_an_asap_request_to_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  ) -> None:
    monkeypatch.setenv("LRM_CML_SIM_TIME_SCALE", "0")
    monkeypatch.setenv("LRM_CML_SIM_POLL_INTERVAL_SECONDS", "0")
    clock = VirtualClock(NOW)
    container = Container(Settings(data_dir=tmp_path, store="memory", tokens="admin:adm",
                                   lifecycle_timeouts={"READY": 5}), clock=clock)
    assert container.instance_controller is None  # an injected clock: the caller drives it
    assert container.lifecycle_settings.timeout(InstanceState.READY).total_seconds() == 300
    try:
        ctx = CommandContext(at=clock.now(), actor="admin:admin")
        fields = copy.deepcopy(YAML(typ="safe").load((SAMPLES / DEFINITION / "definition.yaml").read_text()))
        fields.pop("lab_yaml")
        fields["version"] = str(fields["version"])
        container.definition_service.publish(fields, ctx, lab_yaml=(SAMPLES / DEFINITION / "lab.yaml").read_text())
        container.seed_worker_templates()
        template = container.template_service.get("personal-standard").spec  # type: ignore[attr-defined]
        worker = Worker.request(template, ctx)
        worker.start_provisioning("i-1", ctx)
        worker.mark_ready("10.1.2.3", ctx)
        container.store.save(worker)

        requested = container.instance_service.request(InstanceRequest(definition=DEFINITION, duration_minutes=30),
                                                       Caller("user", "alice"), ctx)
        container.scheduler.run_until_idle()
        instance = container.store.get(requested.instance_id)
        assert instance.state is InstanceState.INSTANTIATING and instance.lab_yaml_uri

        controller = container.build_instance_controller()
        asyncio.run(controller.run_pass())
        instance = container.store.get(requested.instance_id)
        assert instance.state is InstanceState.READY
        assert instance.user_session["host"] == "10.1.2.3"
        assert {d["port"] for d in instance.user_session["devices"]} == set(instance.allocated_ports.values())
    finally:
        container.stop()
        container.store.close()
