"""Small workloads for the simulator's tests (seconds, not minutes)."""

from __future__ import annotations

from typing import Any

import pytest

from processors.simulation import Workload, workload_from_dict

SMALL: dict[str, Any] = {
    "name": "small",
    "start": "2026-03-02T07:00:00Z",
    "hours": 4,
    "seed": 3,
    "definitions": [
        {"name": "two-node", "cpu_cores": 4, "memory_gb": 8, "node_count": 2, "license_affinity": ["PERSONAL"],
         "max_duration_minutes": 120},
        {"name": "graded", "cpu_cores": 2, "memory_gb": 4, "node_count": 1, "license_affinity": ["PERSONAL"],
         "grading": True},
    ],
    "cloud": {"boot_failure_rate": 0.0, "jitter": 0.1},
    "bookings": [
        {"id": "early", "at": "07:00", "definition": "two-node", "start": "08:00", "minutes": 60},
        {"id": "noshow", "at": "07:05", "definition": "two-node", "start": "08:00", "minutes": 60, "no_show": True},
        {"id": "quitter", "at": "07:10", "definition": "graded", "start": "08:30", "minutes": 60,
         "finish_after": 20},
        {"id": "asap", "at": "08:40", "definition": "two-node", "minutes": 30},
    ],
    "generate": [
        {"shape": "exam_wave", "count": 12, "at": "09:00", "minutes": 45, "definition": "two-node",
         "booked_ahead_minutes": [30, 90]},
    ],
}


@pytest.fixture
def small() -> Workload:
    return workload_from_dict(SMALL)
