"""Workload documents and the generator's shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.simulate import read_workload
from processors.simulation import WorkloadError, load_workload, workload_from_dict
from tests.simulation.conftest import SMALL

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {"name": "t", "start": "2026-03-02T06:00:00Z", "hours": 12,
                        "definitions": [{"name": "d"}]}


@pytest.mark.parametrize(("value", "expected"), [
    ("09:30", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),
    ("1+08:00", datetime(2026, 3, 3, 8, 0, tzinfo=UTC)),
    (90, datetime(2026, 3, 2, 7, 30, tzinfo=UTC)),
    ("2026-03-02T10:00:00Z", datetime(2026, 3, 2, 10, 0, tzinfo=UTC)),
])
def test_booking_times(value: Any, expected: datetime) -> None:
    workload = workload_from_dict({**BASE, "bookings": [{"at": 0, "definition": "d", "start": value, "minutes": 30}]})
    assert workload.bookings[0].start == expected


@pytest.mark.parametrize(("change", "message"), [
    ({"definitions": []}, "definitions"),
    ({"bookings": [{"at": 0, "definition": "nope", "minutes": 30}]}, "unknown definition"),
    ({"bookings": [{"at": 0, "definition": "d", "minutes": 0}]}, "minutes"),
    ({"bookings": [{"at": 0, "definition": "d", "minutes": 30, "colour": "red"}]}, "unknown field"),
    ({"bookings": [{"at": "10:00", "definition": "d", "start": "08:00", "minutes": 30}]}, "ends before"),
    ({"generate": [{"shape": "tsunami"}]}, "shape"),
    ({"bookings": [{"id": "x", "definition": "d", "minutes": 5}, {"id": "x", "definition": "d", "minutes": 5}]},
     "unique"),
])
def test_invalid_documents_say_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        workload_from_dict({**BASE, **change})


def test_generation_is_deterministic_per_seed() -> None:
    spec = {**BASE, "generate": [{"shape": "office_hours", "count": 200, "no_show_rate": 0.1,
                                  "early_finish_rate": 0.3, "asap_share": 0.2}]}
    first, again, other = workload_from_dict(spec, seed=1), workload_from_dict(spec, seed=1), workload_from_dict(
        spec, seed=2)
    assert first.bookings == again.bookings
    assert first.bookings != other.bookings


def test_exam_wave_starts_at_one_instant_and_is_booked_ahead() -> None:
    workload = workload_from_dict({**BASE, "generate": [{"shape": "exam_wave", "count": 300, "at": "09:00",
                                                         "booked_ahead_minutes": [60, 120]}]})
    assert len(workload.bookings) == 300
    assert {b.start for b in workload.bookings} == {datetime(2026, 3, 2, 9, 0, tzinfo=UTC)}
    assert all(timedelta(minutes=60) <= b.start - b.at <= timedelta(minutes=120) for b in workload.bookings
               if b.start is not None)


def test_office_hours_fall_within_hours_and_weekends_are_quiet() -> None:
    week = {**BASE, "start": "2026-03-02T00:00:00Z", "hours": 24 * 7,  # Monday to Sunday
            "generate": [{"shape": "office_hours", "count": 2000, "hours": [8, 18], "weekend_factor": 0.1}]}
    workload = workload_from_dict(week)
    starts = [b.start for b in workload.bookings if b.start is not None]
    assert all(8 <= s.hour < 18 for s in starts)
    weekend = sum(1 for s in starts if s.weekday() >= 5)
    assert weekend < 0.06 * len(starts)  # 2 days x 0.1 of 5 weekdays: ~4 %


def test_asap_burst_and_scale() -> None:
    spec = {**BASE, "generate": [{"shape": "asap_burst", "count": 100, "at": "13:00", "spread_minutes": 5}]}
    workload = workload_from_dict(spec, scale=0.1)
    assert len(workload.bookings) == 10
    assert all(b.asap for b in workload.bookings)


def test_round_trip_through_a_written_trace() -> None:
    import json

    workload = workload_from_dict(SMALL)
    again = load_workload(json.dumps(workload.to_dict()))
    assert again.bookings == workload.bookings
    assert again.definitions == workload.definitions


SHIPPED = sorted(p.stem for p in (ROOT / "workloads").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_workloads_load(name: str) -> None:
    workload = read_workload(ROOT / "workloads" / f"{name}.yaml")
    assert workload.bookings and workload.name == name
    if name == "day-10k":
        assert len(workload.bookings) == 10_000


@pytest.mark.parametrize("name", ["exam-wave", "office-hours", "day-10k", "bootcamp-3day"])
def test_each_workload_has_a_boot_failure_variant_with_the_same_bookings(name: str) -> None:
    base = read_workload(ROOT / "workloads" / f"{name}.yaml", scale=0.05)
    variant = read_workload(ROOT / "workloads" / f"{name}-bootfail.yaml", scale=0.05)
    assert variant.cloud.boot_failure_rate == 0.05 and variant.cloud.jitter == base.cloud.jitter
    assert variant.bookings == base.bookings and variant.definitions == base.definitions


def test_extends_merges_mappings_replaces_the_rest_and_stays_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(json.dumps({**SMALL, "cloud": {"boot_failure_rate": 0.0, "jitter": 0.2}}))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\ncloud: {boot_failure_rate: 0.1}\n")
    child = read_workload(tmp_path / "child.yaml")
    assert child.name == "child" and child.cloud.boot_failure_rate == 0.1 and child.cloud.jitter == 0.2
    assert len(child.bookings) == len(workload_from_dict(SMALL).bookings)
    (tmp_path / "escape.yaml").write_text("extends: ../base.yaml\n")
    with pytest.raises(WorkloadError, match="extends"):
        read_workload(tmp_path / "escape.yaml")
    with pytest.raises(WorkloadError, match="extends"):
        load_workload("extends: base.yaml\n")
