"""Set-up shared by the CloudEvents API tests: a started app, and lablet instances driven
through their aggregate (the controllers' part) so the API parts can be tested alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.settings import Settings
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.timeslot import Timeslot

TOKENS = ("admin:adm,instructor:ins,user:usr:alice,grader:grd,grader:grd2:other-grader,service:svc:exam,"
          "service:svc2:intruder")
AUTH = {
    name: {"Authorization": f"Bearer {token}"}
    for name, token in [("admin", "adm"), ("instructor", "ins"), ("user", "usr"), ("grader", "grd"),
                        ("grader2", "grd2"), ("service", "svc"), ("intruder", "svc2")]
}
API = "/api/v1"
LDS = "urn:lds:test"
GRADER = "urn:grader:test"
STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def now() -> datetime:
    return datetime.now(timezone.utc)


def ctx(actor: str = "system:controller") -> CommandContext:
    return CommandContext(at=now(), actor=actor)


# The test receiver (conftest.Receiver) listens on 127.0.0.1 over plain HTTP: development mode
# and the egress allow-list let subscriptions reach it, as an operator would configure them.
LOCAL_RECEIVERS: dict[str, Any] = {"development": True, "webhook_allowed_networks": "127.0.0.0/8,::1/128",
                                   "webhook_origin": "lrm.test"}
# The ``service`` token plays the LDS: bound to the LDS source for session events, so it may
# drive labs it did not request (the ``intruder`` service may not).
LDS_BINDING: dict[str, Any] = {"types": ["lds.session.*"], "sources": [LDS], "senders": ["service:exam"]}


@contextmanager
def started_app(data_dir: Path, **settings: Any) -> Iterator[tuple[TestClient, Container]]:
    # No processors: the tests play the scheduler and the controllers themselves (``step``).
    # If-Match on edits is tested in tests/api/test_etags.py; these tests edit without it.
    settings = {"store": "sqlite", **LOCAL_RECEIVERS, "cloudevent_senders": [LDS_BINDING],
                "require_if_match": False, **settings}
    container = Container(Settings(data_dir=data_dir, tokens=TOKENS, processors=False, **settings))
    with TestClient(create_app(container)) as client:
        yield client, container


def request_instance(container: Container, *, grading: bool = True, owner: str = "alice",
                     requested_by: str = "user:alice") -> str:
    instance_id = f"LabletInstance-{uuid4()}"
    instance = LabletInstance.request_with(
        definition_name="ccna-lab", definition_version="1.0.0",
        requirements=InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=3),
        grading_enabled=grading, owner_id=owner, timeslot=Timeslot(None, now() + timedelta(hours=2)),
        ctx=ctx(requested_by), instance_id=instance_id,
    )
    container.store.save(instance)
    return instance_id


def step(container: Container, instance_id: str, *commands: str, session_id: str = "lds-session-1") -> int:
    """Run controller commands on the instance, one save per command; the last position."""
    position = 0
    for command in commands:
        instance: LabletInstance = container.store.get(instance_id)
        c = ctx()
        if command == "schedule":
            instance.schedule("Worker-test", {}, now(), now() + timedelta(hours=3), "decision-1", c)
        elif command == "instantiate":
            instance.start_instantiation(1, c)
        elif command == "imported":
            instance.record_lab_imported("cml-lab-1", c)
        elif command == "started":
            instance.record_lab_started(c)
        elif command == "ready":
            instance.mark_ready({"session_id": session_id, "login_url": "https://lds.example/s"}, c)
        elif command == "login":
            instance.login(c, session_id=session_id, source="test")
        elif command == "collect":
            instance.start_collection(c, trigger="timeslot_end")
        elif command == "grading":
            instance.start_grading({"session_id": f"grading-{session_id}"}, c)
        elif command == "stopped":
            instance.mark_stopped(c)
        elif command == "archive":
            instance.archive(c)
        elif command == "terminate":
            instance.terminate(None, c)
        else:
            raise ValueError(command)
        position = container.store.save(instance)
    return position


TO_READY = ("schedule", "instantiate", "imported", "started", "ready")


def ready_instance(container: Container, *, grading: bool = True, session_id: str = "lds-session-1") -> str:
    instance_id = request_instance(container, grading=grading)
    step(container, instance_id, *TO_READY, session_id=session_id)
    return instance_id


def state_of(container: Container, instance_id: str) -> str:
    return container.store.get(instance_id).state.value


def structured(type_: str, *, id_: str | None = None, source: str = LDS, subject: str | None = None,
               data: Any = None, **extensions: str) -> dict[str, Any]:
    event: dict[str, Any] = {"specversion": "1.0", "id": id_ or str(uuid4()), "source": source, "type": type_}
    if subject is not None:
        event["subject"] = subject
    if data is not None:
        event["datacontenttype"] = "application/json"
        event["data"] = data
    event.update(extensions)
    return event


def post_structured(client: TestClient, event: dict[str, Any], auth: str = "service"):  # noqa: ANN201
    return client.post(f"{API}/cloudevents", content=json.dumps(event), headers={**STRUCTURED, **AUTH[auth]})


SCORE = {"score": 42, "max_score": 50, "cut_score": 35, "passed": True,
         "sections": [{"name": "routing", "score": 20}], "report_url": "https://grader.example/r/1"}
