"""Property-based API tests generated from the app's own OpenAPI schema (schemathesis 4).

Two properties, with an admin token and a bounded number of examples per operation:
- every operation of the API answers without a server error (5xx), whatever it is sent
  (fuzzed, 10 examples each);
- the instance and event operations (25 examples each, plus schemathesis' coverage phase)
  answer only the statuses, content types and bodies their OpenAPI documents (problems included).

The SSE stream is left out: it never ends, which is the point of it (tests/api/test_events.py
covers it over real HTTP).

Schemathesis' ASGI client ends an app's lifespan after every test and starts it again for the
next, but a container does not restart (its store is closed on stop), and its lazy
``from_fixture`` loader does not work with pytest 9. So the schema is loaded once from the app
wrapped in ``WithoutLifespan``, and this module starts and stops the container itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from tests.api.test_instances_support import NOW, TOKENS, definition_body, system_ctx

ADMIN = {"Authorization": "Bearer adm"}
SSE = "/api/v1/events/stream"
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
SWEEP = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))


class WithoutLifespan:
    """The app, with lifespan messages acknowledged but not passed on."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


DATA_DIR = Path(tempfile.mkdtemp(prefix="lrm-schemathesis-"))
# read_wait_seconds=0: a generated min_position beyond the log answers its documented 504 at once.
CONTAINER = Container(Settings(data_dir=DATA_DIR, store="sqlite", tokens=TOKENS, read_wait_seconds=0),
                      clock=VirtualClock(NOW))
APP = WithoutLifespan(create_app(CONTAINER))
# Every operation, fuzzed (the coverage phase's boundary cases for ~50 operations would take minutes).
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path=SSE)
schema.config.phases.coverage.enabled = False
# This module's own operations, with the coverage phase too (boundaries, missing and wrong fields).
instance_api = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path=SSE).include(
    tag=["instances", "events"])


def no_server_error(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """No 5xx, except the documented 504 of a read model that has not reached ``min_position``."""
    if response.status_code == 504 and "min_position" in (case.query or {}):
        return
    if response.status_code >= 500:
        raise AssertionError(f"{case.operation.label} answered {response.status_code}: {response.text[:300]}")


@pytest.fixture(scope="module", autouse=True)
def running() -> Iterator[None]:
    """The container up for the module, with the sample definition published so that
    instance requests can succeed too."""
    CONTAINER.start()
    fields = definition_body()
    lab_yaml = fields.pop("lab_yaml")
    CONTAINER.definition_service.publish(fields, system_ctx(CONTAINER, "admin:admin"), lab_yaml=lab_yaml)
    try:
        yield
    finally:
        CONTAINER.stop()
        shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@SWEEP
def test_no_operation_answers_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=ADMIN, checks=[no_server_error])


@instance_api.parametrize()
@EXAMPLES
def test_instance_and_event_operations_answer_what_they_document(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers=ADMIN,
        checks=[no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
