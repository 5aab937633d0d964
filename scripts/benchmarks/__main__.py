"""Dispatch ``scripts/bench <name> [args]`` to ``scripts/benchmarks/<name>.py:main()``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main() -> int:
    names = available()
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: scripts/bench <benchmark> [options]\n\nbenchmarks: " + ", ".join(names))
        return 0 if len(sys.argv) >= 2 else 2
    name = sys.argv[1]
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"scripts.benchmarks.{name}")
    sys.argv = [f"scripts/bench {name}", *sys.argv[2:]]
    result = module.main()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
