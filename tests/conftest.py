"""Shared fixtures: PostgreSQL access for the backend-parametrised suites.

PostgreSQL tests run when ``LRM_TEST_POSTGRES_URL`` is set and are skipped otherwise;
CI sets ``LRM_TEST_REQUIRE_POSTGRES=1`` so that a missing server fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL_ENV = "LRM_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_URL_ENV, "")
    if not url:
        if os.environ.get("LRM_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"{POSTGRES_URL_ENV} must be set when LRM_TEST_REQUIRE_POSTGRES=1")
        pytest.skip(f"set {POSTGRES_URL_ENV} to run PostgreSQL-backed tests")
    return url


@pytest.fixture
def postgres_url() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema for one test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
