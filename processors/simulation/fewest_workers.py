"""The fewest workers that can hold a set of labs at one instant: exact bin packing over
every capacity dimension, across templates (the lower bound's per-instant term).

Labs come as counts per ``LabKind``; a worker of kind ``T`` can hold any *pattern* — a
count per lab kind — that fits its capacity in every dimension. The fewest workers is the
integer programme (Gilmore–Gomory's cutting-stock model)

    minimise  sum_p x_p     subject to   sum_p a_pk x_p >= n_k  for every lab kind k,   x_p integer >= 0

over the maximal patterns ``a_p`` of every template (a covering with ``>=`` never needs a
non-maximal pattern). HiGHS (``highspy``) solves it; the model is built once per set of lab
kinds and only the right-hand side changes between instants, and answers are memoised.

Every answer is a **valid lower bound** on the true optimum, and says whether it is exact:

- ``relaxation`` (no solver, too many patterns, solver budget spent): the larger of
  ``ceil(n_k / most copies of k on one worker)`` per kind and, for every set ``S`` of
  templates, ``max_r ceil(sum of demand r of the labs only S may hold / max_{T in S} C_T,r)``
  — each is what any packing needs, so the maximum is too;
- ``highs``: the optimum (proven) — or, when the per-solve time limit hits first, the
  solver's dual bound rounded up (still a bound, not exact).
When the relaxation equals a feasible greedy packing, it is exact without the solver.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from processors.simulation.capacity import LabKind, Vector, WorkerKind, add, fits

_EPS = 1e-9
MAX_PATTERNS = 20_000


@dataclass(frozen=True)
class Needed:
    workers: int  # no packing of these labs uses fewer workers
    exact: bool  # and one with exactly this many exists
    method: str  # "empty" | "relaxation" | "greedy" | "highs"


class FewestWorkers:
    """Callable: ``fewest(counts: {LabKind: n}) -> Needed``, memoised."""

    def __init__(self, workers: Sequence[WorkerKind], kinds: Sequence[LabKind], *, use_solver: bool = True,
                 time_limit: float = 2.0, budget_seconds: float = 60.0) -> None:
        self.workers = list(workers)
        self.kinds = list(dict.fromkeys(kinds))
        self.eligible = {k: [w for w in self.workers if k.eligible(w)] for k in self.kinds}
        self.copies = {k: max((k.copies_in(w) for w in self.workers), default=0) for k in self.kinds}
        self.time_limit = time_limit
        self.budget_seconds = budget_seconds
        self.solver_seconds = 0.0
        self._memo: dict[tuple[int, ...], Needed] = {}
        self._model: _PatternModel | None = None
        if use_solver:
            self._model = _PatternModel.build(self.workers, [k for k in self.kinds if self.eligible[k]])

    @property
    def solver(self) -> str:
        return "highs" if self._model is not None else "none"

    def __call__(self, counts: Mapping[LabKind, int]) -> Needed:
        key = tuple(int(counts.get(k, 0)) if self.eligible[k] else 0 for k in self.kinds)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = self._solve(key)
        return known

    def _solve(self, key: tuple[int, ...]) -> Needed:
        present = {k: n for k, n in zip(self.kinds, key) if n > 0}
        if not present:
            return Needed(0, True, "empty")
        low = self.relaxation(present)
        if low == self.greedy(present):
            return Needed(low, True, "greedy")
        if self._model is None or self.solver_seconds >= self.budget_seconds:
            return Needed(low, False, "relaxation")
        started = time.process_time()
        try:
            workers, exact = self._model.solve(present, self.time_limit)
        finally:
            self.solver_seconds += time.process_time() - started
        return Needed(max(workers, low), exact and workers >= low, "highs")

    # -- the relaxation -----------------------------------------------------------------
    def relaxation(self, present: Mapping[LabKind, int]) -> int:
        best = max(math.ceil(n / self.copies[k] - _EPS) for k, n in present.items())
        names = sorted({w.name for k in present for w in self.eligible[k]})
        subsets: Iterator[tuple[str, ...]]
        if len(names) <= 8:
            subsets = itertools.chain.from_iterable(itertools.combinations(names, r) for r in range(1, len(names) + 1))
        else:  # 2^n subsets would be too many: each template alone and all of them
            subsets = iter([*((n,) for n in names), tuple(names)])
        by_name = {w.name: w for w in self.workers}
        for subset in subsets:
            allowed = set(subset)
            caps = [by_name[n].capacity for n in subset]
            demand: list[float] = [0.0] * len(caps[0])
            for kind, n in present.items():
                if {w.name for w in self.eligible[kind]} <= allowed:
                    demand = [d + n * q for d, q in zip(demand, kind.need)]
            for r, total in enumerate(demand):
                top = max(c[r] for c in caps)
                if total > 0 and top > 0:
                    best = max(best, math.ceil(total / top - _EPS))
        return best

    # -- a feasible packing (an upper bound) --------------------------------------------
    def greedy(self, present: Mapping[LabKind, int]) -> int:
        """First fit, biggest labs first; a new worker is of the kind holding most copies."""
        order = sorted(present, key=lambda k: (-max(q / max(w.capacity[r] for w in self.eligible[k])
                                                    for r, q in enumerate(k.need) if q > 0), str(k)))
        opened: list[tuple[WorkerKind, Vector]] = []
        for kind in order:
            eligible = self.eligible[kind]
            for _ in range(present[kind]):
                for index, (worker, used) in enumerate(opened):
                    if worker in eligible and fits(add(used, kind.need), worker.capacity):
                        opened[index] = (worker, add(used, kind.need))
                        break
                else:
                    worker = max(eligible, key=lambda w: (kind.copies_in(w), -w.hourly_cost, w.name))
                    opened.append((worker, kind.need))
        return len(opened)


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints its banner from C when constructed: keep it out of ``--json`` output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _PatternModel:
    def __init__(self, highs: Any, kinds: list[LabKind]) -> None:
        self.highs = highs
        self.kinds = kinds

    @classmethod
    def build(cls, workers: Sequence[WorkerKind], kinds: list[LabKind]) -> _PatternModel | None:
        try:
            import highspy
        except ImportError:
            return None
        patterns: set[tuple[int, ...]] = set()
        for worker in workers:
            allowed = [k.eligible(worker) for k in kinds]
            for pattern in _maximal_patterns(worker.capacity, kinds, allowed, MAX_PATTERNS - len(patterns)):
                patterns.add(pattern)
            if len(patterns) >= MAX_PATTERNS:
                return None  # too many to be sure the model is complete: the relaxation answers
        if not patterns or not kinds:
            return None
        with _quiet_stdout():
            highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("threads", 1)
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        columns = sorted(patterns)
        lp.num_col_, lp.num_row_ = len(columns), len(kinds)
        lp.col_cost_ = [1.0] * len(columns)
        lp.col_lower_ = [0.0] * len(columns)
        lp.col_upper_ = [inf] * len(columns)
        lp.row_lower_ = [0.0] * len(kinds)
        lp.row_upper_ = [inf] * len(kinds)
        starts, index, value = [0], [], []
        for pattern in columns:
            for row, count in enumerate(pattern):
                if count:
                    index.append(row)
                    value.append(float(count))
            starts.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, index, value
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(columns)
        highs.passModel(lp)
        return cls(highs, kinds)

    def solve(self, present: Mapping[LabKind, int], time_limit: float) -> tuple[int, bool]:
        import highspy

        highs = self.highs
        highs.setOptionValue("time_limit", float(time_limit))
        inf = highspy.kHighsInf
        for row, kind in enumerate(self.kinds):
            highs.changeRowBounds(row, float(present.get(kind, 0)), inf)
        highs.run()
        info = highs.getInfo()
        status = highs.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            return round(info.objective_function_value), True
        dual = info.mip_dual_bound
        return (max(0, math.ceil(dual - 1e-6)) if math.isfinite(dual) else 0), False


def _maximal_patterns(capacity: Vector, kinds: Sequence[LabKind], allowed: Sequence[bool],
                      limit: int) -> Iterator[tuple[int, ...]]:
    """Count vectors that fit ``capacity`` and to which no allowed kind can be added."""
    made = 0
    counts = [0] * len(kinds)

    def room_after(used: Vector, kind: LabKind) -> bool:
        return fits(add(used, kind.need), capacity)

    def walk(position: int, used: Vector) -> Iterator[tuple[int, ...]]:
        nonlocal made
        if made >= limit:
            return
        if position == len(kinds):
            if not any(allowed[k] and room_after(used, kinds[k]) for k in range(len(kinds))):
                made += 1
                yield tuple(counts)
            return
        if not allowed[position] or not any(kinds[position].need):
            yield from walk(position + 1, used)
            return
        most, load = 0, used
        while room_after(load, kinds[position]):
            load = add(load, kinds[position].need)
            most += 1
        for count in range(most, -1, -1):
            counts[position] = count
            yield from walk(position + 1, tuple(u + count * q for u, q in zip(used, kinds[position].need)))
        counts[position] = 0

    yield from walk(0, tuple(0.0 for _ in capacity))
