"""How long a ReservationLedger check takes as the ledger grows.

Run: ``.venv/bin/python -m scripts.benchmarks.ledger``

Two shapes per size:
- *spread*: holds of 1-4 h spread over a horizon that grows with the ledger, about ten
  overlapping at any instant (a busy worker booked weeks ahead): the cost should stay
  flat as reservations are added, since only overlapping ones are visited;
- *dense*: every reservation overlaps the checked window (the worst case: the sweep
  visits all of them).
"""

from __future__ import annotations

import random
import timeit
from datetime import datetime, timedelta, timezone

from domain.ledger import Reservation, ReservationLedger
from domain.resources import Resources

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
SIZES = (50, 500, 5000)
CONCURRENCY = 10


def build(size: int, *, dense: bool, rng: random.Random) -> tuple[ReservationLedger, timedelta]:
    ledger = ReservationLedger(Resources(1e6, 1e6, 1e6), 10**6, (2000, 9999))
    mean_hold_minutes = 150
    horizon = timedelta(minutes=1) if dense else timedelta(minutes=size * mean_hold_minutes / CONCURRENCY)
    for i in range(size):
        start = T0 + timedelta(seconds=rng.uniform(0, horizon.total_seconds()))
        hold = timedelta(minutes=rng.randint(60, 240)) + (timedelta(hours=4) if dense else timedelta(0))
        ports = {"serial_1": 2000 + 3 * i % 7000, "vnc_1": 2001 + 3 * i % 7000}
        ledger.add(Reservation(f"i{i}", Resources(2, 4, 10), 2, ports, start, start + hold), verify=False)
    return ledger, horizon


def per_call_us(func, number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def main() -> None:
    rng = random.Random(42)
    need = Resources(4, 8, 20)
    print(f"{'shape':<7} {'reservations':>12} {'overlapping':>11} {'check µs':>9} {'allocate µs':>11} {'peak µs':>8}")
    for dense in (False, True):
        for size in SIZES:
            ledger, horizon = build(size, dense=dense, rng=rng)
            start = T0 + horizon / 2
            end = start + timedelta(hours=3)
            overlapping = len(ledger.overlapping(start, end))
            check = per_call_us(lambda: ledger.check(need, 4, 3, start, end), 200)
            allocate = per_call_us(lambda: ledger.allocate_ports(["a", "b", "c"], start, end), 200)
            peak = per_call_us(lambda: ledger.peak(start, end), 200)
            shape = "dense" if dense else "spread"
            print(f"{shape:<7} {size:>12} {overlapping:>11} {check:>9.1f} {allocate:>11.1f} {peak:>8.1f}")


if __name__ == "__main__":
    main()
