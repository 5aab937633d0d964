"""The ``interrupted`` KPI: ready labs ended before their booked end, and by whom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.simulate import DEFAULT_TEMPLATES, build_simulation
from domain.worker_template import parse_templates_yaml
from processors.simulation import workload_from_dict
from processors.simulation.interruptions import LabEnd, classify, interruptions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _end(minutes: float, cause: str, actor: str, drained_by: str | None = None) -> LabEnd:
    return LabEnd(T0 + timedelta(minutes=minutes), cause, actor, drained_by)


def test_causes_are_told_apart() -> None:
    assert classify(_end(10, "drain_timeout", "system:autoscaler", "system:autoscaler")) == "system"
    assert classify(_end(10, "drain_timeout", "system:autoscaler", "admin:alice")) == "admin"
    assert classify(_end(10, "worker_lost", "system:instance-controller")) == "system"
    assert classify(_end(10, "session_ended", "service:lds")) == "user"
    assert classify(_end(10, "user_request", "user:bob")) == "user"
    assert classify(_end(10, "no_show", "system:instance-controller")) == "no_show"
    assert classify(_end(10, "admin", "admin:alice")) == "admin"


def test_only_ends_before_the_booked_end_count_with_the_minutes_cut() -> None:
    booked_end = T0 + timedelta(minutes=60)
    kpi = interruptions([
        (booked_end, _end(30, "drain_timeout", "system:autoscaler", "system:autoscaler")),  # 30 min cut
        (booked_end, _end(45, "worker_lost", "system:worker-controller")),  # 15 min cut
        (booked_end, _end(60, "timeslot_end", "system:instance-controller")),  # on time: not cut
        (booked_end, _end(20, "session_ended", "service:lds")),  # the user left
        (booked_end, _end(50, "drain_timeout", "system:autoscaler", "admin:alice")),  # admin: apart
        (booked_end, None),  # still running
    ])
    assert kpi["interrupted"] == {"count": 2, "minutes": 45.0}
    assert kpi["interrupted_by_admin"] == {"count": 1, "minutes": 10.0}
    assert kpi["interrupted_causes"] == {"admin:drain_timeout": 1, "system:drain_timeout": 1,
                                         "system:worker_lost": 1}


def _drained_workload() -> dict[str, Any]:
    templates = [t.to_dict() for t in parse_templates_yaml(DEFAULT_TEMPLATES.read_text())]
    for template in templates:
        template["drain_timeout_hours"] = 0.1  # 6 minutes: the admin's drain cuts the labs left
    return {
        "name": "admin-drain", "start": "2026-03-02T07:00:00Z", "hours": 4, "seed": 5,
        "definitions": [{"name": "d", "cpu_cores": 4, "memory_gb": 8, "node_count": 2,
                         "license_affinity": ["PERSONAL"], "max_duration_minutes": 120}],
        "templates": templates,
        "generate": [{"shape": "exam_wave", "count": 6, "at": "09:00", "minutes": 90, "definition": "d",
                      "booked_ahead_minutes": [30, 90]}],
        "admin_drains": [{"at": "09:10"}],
    }


def test_an_admin_drain_with_a_timeout_is_counted_apart_from_the_system() -> None:
    kpis = build_simulation(workload_from_dict(_drained_workload())).run().kpis
    cut = kpis["interrupted_by_admin"]
    assert cut["count"] >= 1
    assert kpis["interrupted_causes"].get("admin:drain_timeout") == cut["count"]
    # the labs were due to end at 10:30; the drain began 09:10 and timed out 6 minutes later
    assert 0 < cut["minutes"] <= cut["count"] * 80
    assert "system:drain_timeout" not in kpis["interrupted_causes"]
