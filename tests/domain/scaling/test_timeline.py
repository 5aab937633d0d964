"""The planner's timeline (indexed by start, caches shared between plans) equals a sweep over
every span, bit for bit, after random streams of adds, removes and plans (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.scaling import FleetWorker, plan
from domain.scaling.timeline import PeakCache, Timeline, Usage, sweep_peak
from tests.domain.scaling.builders import T0
from tests.domain.scaling.test_properties import scenario

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = T0.timestamp()

usage_st = st.tuples(st.sampled_from([0.5, 1.0, 2.0, 4.0]), st.sampled_from([1.0, 2.5, 8.0]),
                     st.sampled_from([0.0, 10.0]), st.sampled_from([0.0, 1.0, 3.0]))
window_st = st.tuples(st.integers(-60, 600), st.integers(1, 400)).map(lambda w: (w[0], w[0] + w[1]))
op_st = st.one_of(
    st.tuples(st.just("add"), window_st, usage_st),
    st.tuples(st.just("remove"), st.integers(0, 50)),
    st.tuples(st.just("peak"), window_st),
)


def reference_peak(spans: list[tuple[str, float, float, Usage]], start: float, end: float) -> Usage:
    """The sweep over every span in insertion order (what the timeline replaced)."""
    return sweep_peak([(s, e, u) for _, s, e, u in spans if s < end and e > start], start, end)


@SETTINGS
@given(st.lists(op_st, max_size=60))
def test_peaks_equal_a_sweep_over_every_span(ops) -> None:
    timeline = Timeline()
    spans: list[tuple[str, float, float, Usage]] = []
    number = 0
    for op in ops:
        if op[0] == "add":
            (a, b), usage = op[1], op[2]
            instance_id = f"i{number}"
            number += 1
            timeline.add(instance_id, T0 + timedelta(minutes=a), T0 + timedelta(minutes=b), usage)
            spans.append((instance_id, BASE + a * 60, BASE + b * 60, usage))
        elif op[0] == "remove" and spans:
            instance_id = spans.pop(op[1] % len(spans))[0]
            timeline.remove(instance_id)
        elif op[0] == "peak":
            a, b = op[1]
            start, end = BASE + a * 60, BASE + b * 60
            assert timeline.peak(start, end) == reference_peak(spans, start, end)
        assert timeline.instance_ids == [i for i, _, _, _ in spans]
        assert timeline.spans() == [(s, e) for _, s, e, _ in spans]


plan_st = st.lists(  # per plan: its instant, then windows asked and spans added in turn
    st.tuples(st.integers(0, 300),
              st.lists(st.one_of(st.tuples(st.just("peak"), window_st),
                                 st.tuples(st.just("add"), st.sampled_from([(0, 30), (20, 90), (60, 200), (5, 400)]),
                                           st.sampled_from([(1.0, 2.0, 0.0, 1.0), (2.0, 8.0, 10.0, 0.0)]))),
                       max_size=12)),
    min_size=1, max_size=12)


@SETTINGS
@given(st.lists(st.tuples(window_st, usage_st), max_size=25), plan_st, st.booleans())
def test_a_shared_cache_serves_later_plans_the_peaks_of_their_own_spans(holds, plans, empty) -> None:
    """Timelines built at later and later instants from the same worker (or, ``empty``, for
    a new worker) share one cache, and each plan adds spans to its own: every peak equals a
    sweep over that timeline's spans (those not ended at its instant, then those added)."""
    spans = [] if empty else sorted(((f"r{k}", BASE + a * 60, BASE + b * 60, u)
                                     for k, ((a, b), u) in enumerate(holds)), key=lambda sp: (sp[1], sp[0]))
    shared = PeakCache(limit=7)  # starting afresh often, too
    now = BASE
    for step, ops in sorted(plans, key=lambda p: p[0]):
        now = max(now, BASE + step * 60)
        live = [sp for sp in spans if sp[2] > now]
        timeline = Timeline.of_spans(live, shared=shared, **({} if empty else {"shared_from": now}))
        for op in ops:
            if op[0] == "add":
                (a, b), usage = op[1], op[2]
                timeline.add(f"q{len(live)}", T0 + timedelta(minutes=a), T0 + timedelta(minutes=b), usage)
                live.append((f"q{len(live)}", BASE + a * 60, BASE + b * 60, usage))
            else:
                start, end = BASE + op[1][0] * 60, BASE + op[1][1] * 60
                assert timeline.peak(start, end) == reference_peak(live, start, end)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.lists(st.integers(0, 240), min_size=1, max_size=4))
def test_plans_on_reused_worker_snapshots_equal_plans_on_fresh_ones(case, steps) -> None:
    """The autoscaler's view hands the same FleetWorker objects to plan after plan (their
    caches warm); every plan equals one made from fresh copies."""
    fleet, templates, demand, config = case
    for minutes in sorted(steps):
        now = T0 + timedelta(minutes=minutes)
        fresh = [FleetWorker.from_dict(w.to_dict()) for w in fleet]
        reused = plan(now, fleet, templates, demand, config)
        assert reused == plan(now, fresh, templates, demand, config)
        assert reused.to_dict() == plan(now, fresh, templates, demand, config).to_dict()
