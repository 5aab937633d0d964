"""Score plugins: rank the workers that passed every filter (0-100, higher is better)."""

from domain.placement.plugins.scores.added_hours import AddedHours
from domain.placement.plugins.scores.bin_packing import BinPacking

__all__ = ["AddedHours", "BinPacking"]
