"""Hypothesis: any interleaving of saves, conflicting saves, projection crashes, restarts
and rebuilds ends with read models equal to a projection of the final aggregates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import ConcurrencyConflict
from projections.runner import ProjectionRunner
from tests.store.aggregates import Counter
from tests.store.conftest import BACKENDS, Backend
from tests.store.projections_for_tests import CounterSummary


class Crash(Exception):
    pass


class CrashingSummary(CounterSummary):
    """Fails (inside the transaction, after some effects) on the n-th event it handles."""

    def __init__(self, crash_at: int | None) -> None:
        self.crash_at = crash_at
        self.handled = 0

    def handle(self, event, tx):  # type: ignore[no-untyped-def]
        super().handle(event, tx)
        self.handled += 1
        if self.crash_at is not None and self.handled == self.crash_at:
            raise Crash


operations = st.lists(
    st.one_of(
        st.tuples(st.just("open")),
        st.tuples(st.just("bump"), st.integers(0, 4), st.integers(1, 9)),
        st.tuples(st.just("stale_bump"), st.integers(0, 4)),
        st.tuples(st.just("project"), st.integers(1, 7), st.none() | st.integers(1, 12)),
        st.tuples(st.just("rebuild")),
    ),
    max_size=25,
)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_interleaving_converges(make_backend: Callable[[str], Backend], kind: str,
                                    ops: list[tuple[Any, ...]]) -> None:
    check_interleaving(make_backend(kind), ops)


# A PostgreSQL schema per example is slow to set up: fewer examples there.
@pytest.mark.parametrize("kind", [p for p in BACKENDS if not isinstance(p, str)])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_interleaving_converges_on_postgres(make_backend: Callable[[str], Backend], kind: str,
                                                ops: list[tuple[Any, ...]]) -> None:
    check_interleaving(make_backend(kind), ops)


def check_interleaving(backend: Backend, ops: list[tuple[Any, ...]]) -> None:
    store, models = backend.event_store(), backend.read_models()
    ids: list[str] = []
    for op in ops:
        if op[0] == "open":
            counter = Counter.open(f"c{len(ids)}")
            store.save(counter)
            ids.append(counter.id)
        elif op[0] == "bump" and ids:
            counter = store.get(ids[op[1] % len(ids)])
            counter.bump(op[2])
            store.save(counter)
        elif op[0] == "stale_bump" and ids:
            stale = store.get(ids[op[1] % len(ids)])
            fresh = store.get(stale.id)
            fresh.bump()
            store.save(fresh)
            stale.bump(100)
            with pytest.raises(ConcurrencyConflict):
                store.save(stale)
        elif op[0] == "project":
            runner = ProjectionRunner(store, models, [CrashingSummary(op[2])], batch_size=op[1])
            try:
                runner.catch_up()
            except Crash:
                pass  # the runner is abandoned, as if its process died
        elif op[0] == "rebuild":
            ProjectionRunner(store, models, [CounterSummary()], batch_size=4).rebuild("counter_summary")

    ProjectionRunner(store, models, [CounterSummary()], batch_size=5).catch_up()

    docs = {d["id"]: d for d in models.query("counters", limit=1000).items}
    assert {i: docs[i]["total"] for i in docs} == {i: store.get(i).total for i in ids}
    assert all(docs[i]["events"] == store.get(i).version + 1 for i in ids)
    times = [d["times"] for d in models.query("applied", limit=10_000).items]
    # (PostgreSQL leaves position gaps after a conflict: count events, not positions)
    assert len(times) == len(store.read_all(limit=10_000)) and set(times) <= {1}
    backend.close()
