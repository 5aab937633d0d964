"""The control read models give the same answers on every read-model backend (memory, SQLite,
PostgreSQL when ``LRM_TEST_POSTGRES_URL`` is set), and a rebuild gives the same documents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.eventstore import EventStore, open_event_store
from adapters.eventstore.readmodel_memory import MemoryReadModelStore
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from domain.context import CommandContext
from domain.definition import DefinitionSpec, LabletDefinition
from domain.lab_yaml import analyse
from domain.resources import Resources
from domain.worker import Worker
from domain.worker_template import LicenseType, WorkerTemplate, parse_templates_yaml
from projections.readmodels.definitions import DefinitionQueries
from projections.readmodels.definitions import PROJECTIONS as DEFINITION_PROJECTIONS
from projections.readmodels.templates import PROJECTIONS as TEMPLATE_PROJECTIONS
from projections.readmodels.templates import TemplateQueries
from projections.readmodels.workers import PROJECTIONS as WORKER_PROJECTIONS
from projections.readmodels.workers import WorkerQueries, worker_view
from projections.runner import ProjectionRunner
from tests.api.test_templates_support import NOW, ROOT, sample_lab_yaml
from tests.conftest import postgres_url_or_skip

PROJECTIONS = [*TEMPLATE_PROJECTIONS, *DEFINITION_PROJECTIONS, *WORKER_PROJECTIONS]
SHA = "0" * 64


def history(store: EventStore) -> dict[str, str]:
    """Templates, definition versions, a deprecation, workers with reservations in every state."""
    ctx = CommandContext(at=NOW, actor="test")
    specs = parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())
    for spec in specs:
        store.save(WorkerTemplate.register(spec, ctx))
    removed: WorkerTemplate = store.get(WorkerTemplate.stream_id_for("enterprise-large"))
    removed.remove(ctx)
    store.save(removed)
    text = sample_lab_yaml()
    fields: dict[str, Any] = {
        "form_qualified_name": "CCNA", "lab_yaml_uri": "file:///x.yaml", "max_duration_minutes": 90,
        "resource_requirements": {"cpu_cores": 2, "memory_gb": 4, "storage_gb": 10},
        "port_template": [{"name": n, "protocol": "telnet"} for n in ("serial_1", "serial_2", "vnc_1")],
    }
    for name, affinity in (("ccna", ["PERSONAL"]), ("ccna-b", ["ENTERPRISE"]), ("ospf", ["PERSONAL"])):
        definition = LabletDefinition.create(
            DefinitionSpec.from_dict({**fields, "name": name, "license_affinity": affinity}), SHA, analyse(text), ctx)
        for patch in range(1, 11):  # 1.0.0 … 1.0.10: "10" must sort after "9"
            definition.publish(DefinitionSpec.from_dict({**fields, "name": name, "license_affinity": affinity,
                                                         "max_duration_minutes": 90 + patch}), SHA, analyse(text), ctx)
        if name == "ccna-b":
            definition.deprecate(ctx, reason="old")
        store.save(definition)
    template = specs[0]
    ids: dict[str, str] = {}
    for label in ("running", "pending", "failed", "terminated"):
        worker = Worker.request(template, ctx)
        if label in ("running", "terminated"):
            worker.start_provisioning("i-1", ctx)
            worker.mark_ready("10.0.0.1", ctx)
            for n in range(3):
                worker.reserve(f"Instance-{label}-{n}", Resources(2, 4, 10), 2, ["serial_1"],
                               NOW + timedelta(hours=n - 1), NOW + timedelta(hours=n + 1), ctx)
            worker.release(f"Instance-{label}-2", ctx)
            worker.extend_reservation(f"Instance-{label}-1", NOW + timedelta(hours=5), ctx)
        if label == "failed":
            worker.provisioning_failed("boom", ctx)
        if label == "terminated":
            worker.terminate("admin", ctx, force=True)
        store.save(worker)
        ids[label] = worker.id
    return ids


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def read_models(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        store: Any = MemoryReadModelStore()
    elif request.param == "sqlite":
        store = SqliteReadModelStore(tmp_path / "readmodels.sqlite3")
    else:
        from adapters.eventstore.factory import drop_schema
        from adapters.eventstore.readmodel_postgres import PostgresReadModelStore

        url = postgres_url_or_skip()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        store = PostgresReadModelStore(url, schema)
        request.addfinalizer(lambda: drop_schema(url, schema))
    try:
        yield store
    finally:
        store.close()


def answers(read_models: Any, ids: dict[str, str]) -> dict[str, Any]:
    templates, definitions, workers = (TemplateQueries(read_models), DefinitionQueries(read_models),
                                       WorkerQueries(read_models))

    def all_pages(query: Any) -> list[Any]:
        items, cursor = [], None
        while True:
            page = query(cursor)
            items += page.items
            if page.next_cursor is None:
                return items
            cursor = page.next_cursor

    return {
        "templates": [t["name"] for t in templates.list().items],
        "removed": templates.get("enterprise-large"),
        "definitions": [d["name"] for d in all_pages(lambda c: definitions.list(limit=1, cursor=c))],
        "prefix": [d["name"] for d in all_pages(lambda c: definitions.list(name_prefix="ccna", limit=1, cursor=c))],
        "deprecated": [d["name"] for d in definitions.list(deprecated=True).items],
        "enterprise": [d["name"] for d in definitions.list(license_type=LicenseType.ENTERPRISE).items],
        "versions": [v["version"] for v in all_pages(lambda c: definitions.versions("ccna", limit=4, cursor=c))],
        "workers": sorted((w["id"], w["state"], w["live"]) for w in workers.list().items),
        "live": sorted(workers.live_workers_of("personal-standard")),
        "running": worker_view(workers.get(ids["running"]), NOW),
        "timeline": [(e["type"], e["version"]) for e in workers.timeline(ids["running"]).items],
        "capacity": workers.capacity(NOW, NOW, NOW + timedelta(hours=6)),
        "reservations": all_pages(lambda c: workers.reservations(NOW, NOW - timedelta(hours=2),
                                                                  NOW + timedelta(hours=6), limit=1, cursor=c)),
    }


def test_same_answers_on_every_backend_and_after_a_rebuild(read_models: Any) -> None:
    events = open_event_store("memory")
    ids = history(events)
    runner = ProjectionRunner(events, read_models, PROJECTIONS)
    runner.catch_up()
    expected = answers(reference_models(events), ids)
    assert answers(read_models, ids) == expected
    assert expected["templates"] == ["personal-standard"] and expected["removed"] is None
    assert expected["definitions"] == ["ccna", "ccna-b", "ospf"]
    assert expected["prefix"] == ["ccna", "ccna-b"]
    assert expected["deprecated"] == ["ccna-b"] and expected["enterprise"] == ["ccna-b"]
    assert expected["versions"] == [f"1.0.{p}" for p in range(11)]
    assert {state for _id, state, _live in expected["workers"]} == {"RUNNING", "PENDING", "FAILED", "TERMINATED"}
    assert expected["live"] == sorted([ids["running"], ids["pending"]])
    running = expected["running"]
    assert [r["instance_id"] for r in running["reservations"]] == ["Instance-running-0", "Instance-running-1"]
    assert running["reservations"][1]["hold_end"] == (NOW + timedelta(hours=5)).isoformat()
    assert [r["instance_id"] for r in expected["reservations"]] == ["Instance-running-0", "Instance-running-1"]
    assert expected["capacity"]["templates"][0]["workers"] == 2

    runner.rebuild_all()
    assert answers(read_models, ids) == expected


def reference_models(events: EventStore) -> MemoryReadModelStore:
    """The reference: the same events projected into memory."""
    reference = MemoryReadModelStore()
    ProjectionRunner(events, reference, PROJECTIONS).catch_up()
    return reference
