"""Every benchmark in one go: ``scripts/bench all [--quick | --tiny]``.

Each benchmark runs in its own process (one failing does not stop the others; none
shares a warm interpreter with another). ``--quick`` (the SPEC §10 check in under five
minutes) and ``--tiny`` (the CI smoke test: seconds per benchmark) choose the sizes
below; without either, each benchmark runs at its full default size. Exit status 1 when
any benchmark failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# name -> (full, --quick, --tiny) arguments; None: skipped at that size
PLAN: dict[str, tuple[list[str] | None, list[str] | None, list[str] | None]] = {
    "store": ([], ["--quick"], ["--events", "300", "--latency-samples", "20"]),
    "ledger": ([], [], None),  # no size option: ~15 s of CPU, too long for the smoke test
    "placement": ([], ["--workers", "200", "--requests", "1000"], ["--workers", "20", "--requests", "50"]),
    "scheduler": ([], ["--quick"], ["--workers", "10", "--requests", "50"]),
    "api": ([], ["--quick"], ["--tiny"]),
    "projections": ([], ["--quick"], ["--tiny"]),
    "simulate": ([], ["--quick"], ["--tiny"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--tiny", action="store_true")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args()
    column = 2 if args.tiny else 1 if args.quick else 0
    summary: list[tuple[str, str, float]] = []
    for name, sizes in PLAN.items():
        if args.only and name not in args.only:
            continue
        extra = sizes[column]
        if extra is None:
            summary.append((name, "skipped at this size", 0.0))
            continue
        print(f"\n=== scripts/bench {name} {' '.join(extra)}", flush=True)
        began = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "scripts.benchmarks", name, *extra], cwd=ROOT)
        summary.append((name, "ok" if code == 0 else f"FAILED (exit {code})", time.perf_counter() - began))
    print("\n=== summary")
    for name, status, seconds in summary:
        print(f"{name:<12} {status:<22} {seconds:7.1f} s")
    return 0 if all(status in ("ok", "skipped at this size") for _, status, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
