"""Set-up of the hostile-input tests: one started app per store (SQLite, PostgreSQL); no tests here.

PostgreSQL runs when ``LRM_TEST_POSTGRES_URL`` is set, in a database of its own (dropped
afterwards), since NUL and surrogates fail there and not in SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi.testclient import TestClient

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from tests.api.test_instances_support import publish
from tests.api.test_templates_support import NOW, TOKENS
from tests.conftest import postgres_url_or_skip

STORES = ["sqlite", "postgres"]


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    server = postgres_url_or_skip()
    name = f"lrm_hostile_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def store_settings(store: str, data_dir: Path, **overrides: Any) -> Iterator[Settings]:
    if store == "sqlite":
        yield Settings(data_dir=data_dir, store="sqlite", tokens=TOKENS, **overrides)
        return
    with postgres_database() as url:
        yield Settings(data_dir=data_dir, store="postgres", store_url=url, tokens=TOKENS, **overrides)


@contextmanager
def hostile_client(store: str, data_dir: Path, **overrides: Any) -> Iterator[tuple[TestClient, Container]]:
    """A started app with the sample definition published; a 500 is answered, not raised,
    so the tests see exactly what a client would."""
    with store_settings(store, data_dir, **overrides) as settings:
        container = Container(settings, clock=VirtualClock(NOW))
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            publish(client)
            yield client, container


def read_models_current(container: Container, timeout: float = 10) -> bool:
    """Every projection has applied everything in the log (none is stuck on a bad event)."""
    return container.wait_for_position(container.store.max_position(), timeout)
