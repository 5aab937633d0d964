"""Replicas starting together on a fresh PostgreSQL schema all open their stores.

Concurrent ``CREATE ... IF NOT EXISTS`` fails in PostgreSQL ("tuple concurrently updated");
every process serialises its DDL on one advisory lock (adapters/eventstore/ddl.py).
"""

from __future__ import annotations

import threading
import uuid

from adapters.eventstore.factory import drop_schema, open_event_store
from adapters.eventstore.readmodel_postgres import PostgresReadModelStore
from projections.readmodel import Table

REPLICAS = 8


def test_replicas_starting_at_once_all_open_the_store_and_read_models(postgres_url: str) -> None:
    schema = f"t_ddl_{uuid.uuid4().hex[:10]}"
    barrier = threading.Barrier(REPLICAS)
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            barrier.wait()
            store = open_event_store("postgres", postgres_url=postgres_url, schema=schema)
            read_models = PostgresReadModelStore(postgres_url, schema)
            read_models.ensure_tables([Table("things", {"state": str})])
            read_models.close()
            store.close()
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=replica) for _ in range(REPLICAS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
    finally:
        drop_schema(postgres_url, schema)
