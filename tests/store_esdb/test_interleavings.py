"""Hypothesis: any interleaving of saves, conflicting saves, projection crashes, restarts
and rebuilds converges on EventStoreDB too (the check of ``tests/store``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.store.test_interleavings import check_interleaving, operations
from tests.store_esdb.conftest import ESDB_URI, NO_SERVER, EsdbBackend

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@settings(max_examples=25, **SETTINGS)
@given(ops=operations)
def test_any_interleaving_converges_on_the_fake(
    make_backend: Callable[[str], EsdbBackend], ops: list[tuple[Any, ...]]
) -> None:
    check_interleaving(make_backend("esdb-fake"), ops)  # type: ignore[arg-type]


@pytest.mark.skipif(not ESDB_URI, reason=NO_SERVER)
@settings(max_examples=6, **SETTINGS)
@given(ops=operations)
def test_any_interleaving_converges_on_eventstoredb(
    make_backend: Callable[[str], EsdbBackend], ops: list[tuple[Any, ...]]
) -> None:
    check_interleaving(make_backend("esdb"), ops)  # type: ignore[arg-type]
