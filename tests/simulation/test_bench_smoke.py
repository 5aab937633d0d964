"""CI smoke test of the benchmark suite: ``scripts/bench all --tiny`` runs and prints numbers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_all_tiny_exits_zero_and_prints_numbers() -> None:
    done = subprocess.run([str(ROOT / "scripts" / "bench"), "all", "--tiny"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split("=== summary", 1)[1]
    for name in ("store", "placement", "scheduler", "api", "projections", "simulate"):
        assert re.search(rf"^{name}\s+ok\s", summary, re.M), summary
    assert re.search(r"events/s", done.stdout)
    assert re.search(r"p95", done.stdout)
    assert re.search(r"\d+\.\d+ s wall", done.stdout)
