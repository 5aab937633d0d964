"""``scripts/bench hold_rule`` rebuilds the KPIs' served spans: its offline figure is the KPI's."""

from __future__ import annotations

import pytest

from scripts.benchmarks.hold_rule import measure


@pytest.mark.parametrize("name", ["office-hours", "conference-day"])
def test_the_served_spans_are_the_kpis_and_booked_holds_are_reported(name: str) -> None:
    row = measure(name, 0.03)
    assert row["offline_hours"] == pytest.approx(row["kpi_offline_hours"], abs=1e-3)
    assert row["by_booked_holds_hours"] > 0 and row["no_margin_hours"] > 0
    assert row["teardown_margin_minutes"] == 30
