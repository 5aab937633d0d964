"""DueTimes finds the due instances without a scan: it must agree with the scan it replaced."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.instances.due_times import DueTimes

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
KEYS = st.sampled_from([f"LabletInstance-{n}" for n in range(6)])
AT = st.one_of(st.none(), st.integers(0, 40).map(lambda m: T0 + timedelta(minutes=m)))
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, AT),
    st.tuples(st.just("setdefault"), KEYS, AT),
    st.tuples(st.just("pop"), KEYS, st.none()),
    st.tuples(st.just("query"), st.integers(-5, 45), st.none()),  # the clock may step back a little
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_due_and_earliest_agree_with_a_scan(ops: list[tuple]) -> None:
    times = DueTimes()
    for op, key, at in ops:
        if op == "set":
            times[key] = at
        elif op == "setdefault":
            times.setdefault(key, at)
        elif op == "pop":
            times.pop(key, None)
        else:
            now = T0 + timedelta(minutes=key)
            assert times.due(now) == {k for k, v in times.items() if v is None or v <= now}
        assert times.earliest() == min((v for v in times.values() if v is not None), default=None)
