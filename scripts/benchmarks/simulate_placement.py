"""`lablet simulate` with the opt-in AddedHours placement score as the scheduler's policy.

    .venv/bin/python -m scripts.benchmarks.simulate_placement \\
        [--added-hours-weight 10] [--bin-packing-weight 1] -w workloads/office-hours.yaml --json

Every other argument goes to ``lablet simulate`` unchanged. The policy is
``AddedHours(weight) + BinPacking(weight)`` over the default filters; compare with plain
``lablet simulate`` on the same workload, in the same session (the machine is shared).
"""

from __future__ import annotations

import argparse
import sys

import processors.scheduler.core as scheduler_core
from domain.placement import PlacementPipeline, default_filters
from domain.placement.plugins.scores import AddedHours, BinPacking


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--added-hours-weight", type=float, default=10.0)
    parser.add_argument("--bin-packing-weight", type=float, default=1.0)
    known, rest = parser.parse_known_args(argv)

    def pipeline(*, record_all_rejections: bool = False) -> PlacementPipeline:
        scores = [AddedHours(known.added_hours_weight)]
        if known.bin_packing_weight > 0:
            scores.append(BinPacking(known.bin_packing_weight))
        return PlacementPipeline(default_filters(), scores, "added-hours", "1",
                                 record_all_rejections=record_all_rejections)

    # the scheduler builds its policy with default_pipeline() when given none
    scheduler_core.default_pipeline = pipeline  # type: ignore[assignment]
    from api.cli import main as cli_main

    sys.argv = ["lablet", "simulate", *rest]
    cli_main()


if __name__ == "__main__":
    main()
