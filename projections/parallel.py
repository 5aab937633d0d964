"""Rebuilding independent projections in separate processes, to use more than one core.

Each read model is a pure function of the log, so groups of projections can be rebuilt
side by side: every process reads and decodes the log itself and replays its group into
shadow tables (projections/targets.py). Groups are balanced by each projection's
``rebuild_weight`` (longest first, to the lightest group). The stores are opened in each
process by ``open_stores``, a picklable top-level callable (the CLI passes one that builds
them from the settings).

Where the processes write depends on the read-model store:

- **Scratch files** (a store with ``ScratchBuilds``: SQLite). One SQLite file has one
  writer at a time, and a batch's Python work runs inside its write transaction, so
  processes writing the same file take turns (measured: 1.04x). Each process builds its
  group's shadow tables in a scratch file of its own instead; this process then copies
  each scratch's tables in (SQLite's own ``INSERT ... SELECT``, one transaction per
  group), applies what was appended to the log meanwhile, and switches each projection
  over with ``promote``, atomically as in one process: until then readers see the old
  model, whole.
- **In place** (PostgreSQL, whose transactions on different tables and checkpoint rows
  do not exclude each other): each process rebuilds its group in the shared database with
  ``ProjectionRunner.rebuild_all`` and switches each projection over when caught up.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from projections.applying import BatchApplier
from projections.parking import PARKED
from projections.ports import EventFeed
from projections.projection import Projection
from projections.readmodel import Checkpoint, ReadModelStore, Table
from projections.targets import Target

OpenStores = Callable[[], tuple[EventFeed, ReadModelStore, Sequence[Projection]]]
Progress = Callable[[int, int], None]
REPLAY_BATCHES = 5  # a rebuild reads batch_size x 5 events per transaction (as ProjectionRunner)


class ScratchBuilds(Protocol):
    """A read-model store whose rebuilds can be built elsewhere and copied in."""

    def open_scratch(self, name: str) -> ReadModelStore:
        """An empty store of the same kind that writes without this one's write lock."""
        ...

    def adopt_scratch(self, name: str, tables: Sequence[Table], merged: Sequence[Table],
                      checkpoints: Sequence[Checkpoint]) -> None:
        """One transaction: ``tables`` replaced by the scratch's, its rows of ``merged`` added,
        ``checkpoints`` saved."""
        ...

    def remove_scratch(self, name: str) -> None: ...


def builds_in_scratch(store: object) -> bool:
    return all(callable(getattr(store, m, None)) for m in ("open_scratch", "adopt_scratch", "remove_scratch"))


def balanced_groups(projections: Sequence[Projection], count: int) -> list[list[str]]:
    """Projection names in ``count`` groups of about equal total ``rebuild_weight``."""
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(max(1, count))]
    for projection in sorted(projections, key=lambda p: (-p.rebuild_weight, p.name)):
        index = min(range(len(groups)), key=lambda i: groups[i][0])
        weight, names = groups[index]
        groups[index] = (weight + projection.rebuild_weight, [*names, projection.name])
    return [names for _weight, names in groups if names]


def rebuild_in_processes(
    open_stores: OpenStores,
    projections: Sequence[Projection],
    processes: int,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
    timings: dict[str, Any] | None = None,
    in_place: bool = False,
) -> int:
    """Rebuild ``projections`` in ``processes`` worker processes; returns the events replayed
    by the slowest group. ``progress(done, total)`` reports the group furthest behind.
    ``timings`` (for benchmarks) receives each group's CPU seconds and, for scratch files,
    the wall seconds of this process's steps after the groups finished. ``in_place`` writes
    into the shared store even where scratch files are possible (benchmarks compare both)."""
    groups = balanced_groups(projections, processes)
    timings = {} if timings is None else timings
    events, store, _ = open_stores()
    try:
        if builds_in_scratch(store) and not in_place:
            timings["design"] = "scratch files"
            return _in_scratch_files(open_stores, events, store, projections, groups, batch_size, progress, timings)
    finally:
        store.close()
        _close(events)
    timings["design"] = "in place"
    children = GroupProcesses(_rebuild_group_in_place, open_stores, groups, [()] * len(groups), batch_size,
                              progress, timings)
    return max(children.wait().values(), default=0)


# -- scratch files ------------------------------------------------------------------------
def _in_scratch_files(open_stores: OpenStores, events: EventFeed, store: Any, projections: Sequence[Projection],
                      groups: list[list[str]], batch_size: int, progress: Progress | None,
                      timings: dict[str, Any]) -> int:
    """The heaviest group is built here, into this store's shadow tables (nothing to copy,
    no process to start); each other group by a process of its own in a scratch file."""
    weight = {p.name: p.rebuild_weight for p in projections}
    here, *others = sorted(groups, key=lambda g: -sum(weight[n] for n in g))
    store.ensure_tables([PARKED])  # parked events of the scratches are added to it
    run = uuid.uuid4().hex[:8]
    scratches = [f"rebuild-{run}-{index}" for index in range(len(others))]
    shadows = [Target.shadow_of(p) for p in projections if any(p.name in g for g in groups)]
    local = [s for s in shadows if s.projection.name in here]
    try:
        children = GroupProcesses(_build_group_in_scratch, open_stores, others, [(s,) for s in scratches],
                                  batch_size, progress, timings)
        for shadow in local:  # as ProjectionRunner starts a shadow rebuild
            store.drop_tables(shadow.tables)
            store.ensure_tables(shadow.tables)
        with store.transaction() as tx:
            for shadow in local:
                tx.save_checkpoint(shadow.name, 0, shadow.version)
        positions = {s.name: 0 for s in local}
        cpu = time.process_time()
        count = replay(events, store, local, positions, batch_size * REPLAY_BATCHES, children.report_here)
        timings.setdefault("group_cpu_seconds", {})[", ".join(here) + " (this process)"] = round(
            time.process_time() - cpu, 2)
        built = children.wait()
        began, began_cpu = time.perf_counter(), time.process_time()
        for names, scratch in zip(others, scratches, strict=True):
            group_positions, group_count = built[tuple(names)]
            mine = [s for s in shadows if s.projection.name in names]
            store.adopt_scratch(scratch, [t for s in mine for t in s.tables], [PARKED],
                                [Checkpoint(s.name, group_positions[s.name], s.version) for s in mine])
            store.remove_scratch(scratch)
            positions.update(group_positions)
            count = max(count, group_count)
        adopted, adopted_cpu = time.perf_counter(), time.process_time()
        count += replay(events, store, shadows, positions, batch_size * REPLAY_BATCHES, progress)
        replayed, replayed_cpu = time.perf_counter(), time.process_time()
        for shadow in shadows:
            if store.promote(shadow.pairs(), shadow.name, shadow.projection.name):
                retarget_parked(store, shadow)
        timings.update(copy_in_seconds=adopted - began, catch_up_seconds=replayed - adopted,
                       switch_over_seconds=time.perf_counter() - replayed,
                       serial_cpu_seconds=time.process_time() - began_cpu,
                       copy_in_cpu_seconds=adopted_cpu - began_cpu,
                       switch_over_cpu_seconds=time.process_time() - replayed_cpu)
        return count
    finally:
        for scratch in scratches:
            store.remove_scratch(scratch)


def _build_group_in_scratch(open_stores: OpenStores, names: list[str], batch_size: int, report: Progress,
                            scratch: str) -> tuple[dict[str, int], int]:
    events, store, projections = open_stores()
    try:
        into = store.open_scratch(scratch)  # type: ignore[attr-defined]
    finally:
        store.close()
    try:
        shadows = [Target.shadow_of(p) for p in projections if p.name in names]
        into.ensure_tables([PARKED, *(t for s in shadows for t in s.tables)])
        with into.transaction() as tx:
            for shadow in shadows:
                tx.save_checkpoint(shadow.name, 0, shadow.version)
        positions = {s.name: 0 for s in shadows}
        count = replay(events, into, shadows, positions, batch_size * REPLAY_BATCHES, report)
        return positions, count
    finally:
        into.close()
        _close(events)


def replay(events: EventFeed, store: ReadModelStore, targets: Sequence[Target], positions: dict[str, int],
           limit: int, progress: Progress | None) -> int:
    """Apply the log after ``positions`` (updated in place) to ``targets`` up to its current
    end; returns the events read."""
    applier = BatchApplier(store)
    count = 0
    while targets:
        after = min(positions[t.name] for t in targets)
        batch = events.read_all(after=after, limit=limit)
        if not batch:
            return count
        positions.update(applier.apply(batch, after, targets))
        count += len(batch)
        if progress is not None:
            done = batch[-1].position or after
            progress(done, max(done, events.max_position()))
    return count


def retarget_parked(store: ReadModelStore, shadow: Target) -> None:
    """After a switch, the new model's parked events are the projection's; the old ones go
    (as ProjectionRunner does after its own switch-over)."""
    with store.transaction() as tx:
        for doc in tx.query(PARKED.name, where={"projection": [shadow.projection.name, shadow.name]}):
            tx.delete(PARKED.name, f"{doc['projection']}@{doc['position']:016d}")
            if doc["projection"] == shadow.name:
                doc["projection"] = shadow.projection.name
                tx.put(PARKED.name, f"{shadow.projection.name}@{doc['position']:016d}", doc)


# -- in place -------------------------------------------------------------------------------
def _rebuild_group_in_place(open_stores: OpenStores, names: list[str], batch_size: int, report: Progress) -> int:
    from projections.runner import ProjectionRunner

    events, store, projections = open_stores()
    try:
        runner = ProjectionRunner(events, store, [p for p in projections if p.name in names], batch_size=batch_size)
        return runner.rebuild_all(report)
    finally:
        store.close()
        _close(events)


# -- the processes ----------------------------------------------------------------------------
def _group_main(work: Callable[..., Any], open_stores: OpenStores, names: list[str], batch_size: int,
                reports: Any, extra: tuple[Any, ...]) -> None:
    key = tuple(names)
    try:
        result = work(open_stores, names, batch_size,
                      lambda done, total: reports.put(("progress", key, done, total)), *extra)
        reports.put(("done", key, result, time.process_time()))
    except BaseException as error:  # reported to the parent, which raises
        reports.put(("error", key, f"{type(error).__name__}: {error}", 0))
        raise


class GroupProcesses:
    """``work(open_stores, names, batch_size, report, *extra)`` for each group, each in a
    process of its own; ``wait()`` returns each group's result (raises if any failed)."""

    HERE = ("(this process)",)

    def __init__(self, work: Callable[..., Any], open_stores: OpenStores, groups: list[list[str]],
                 extras: list[tuple[Any, ...]], batch_size: int, progress: Progress | None,
                 timings: dict[str, Any]) -> None:
        self.groups, self.progress, self.timings = groups, progress, timings
        context = multiprocessing.get_context("spawn")  # no inherited threads or connections
        self.reports = context.Queue()
        self.workers = [context.Process(target=_group_main, name=f"rebuild-{index}", daemon=True,
                                        args=(work, open_stores, names, batch_size, self.reports, extra))
                        for index, (names, extra) in enumerate(zip(groups, extras, strict=True))]
        for worker in self.workers:
            worker.start()
        self.done: dict[tuple[str, ...], Any] = {}
        self.at: dict[tuple[str, ...], tuple[int, int]] = {}
        self.errors: list[str] = []

    def report_here(self, done: int, total: int) -> None:
        """Progress of the group this process builds (the children's reports are read meanwhile)."""
        self.at[self.HERE] = (done, total)
        self._poll(0.0)
        self._report()

    def wait(self) -> dict[tuple[str, ...], Any]:
        self.at.pop(self.HERE, None)
        try:
            while len(self.done) + len(self.errors) < len(self.groups):
                if not self._poll(1.0) and not any(w.is_alive() for w in self.workers) and self.reports.empty():
                    self.errors.append("a rebuild process exited without reporting")
        finally:
            for worker in self.workers:
                worker.join(timeout=30)
        if self.errors:
            raise RuntimeError("rebuild failed: " + "; ".join(self.errors))
        return self.done

    def _poll(self, timeout: float) -> bool:
        """Read the reports waiting (the first one up to ``timeout``); False if there was none."""
        read = False
        while True:
            try:
                kind, names, value, total = self.reports.get(timeout=timeout) if not read and timeout \
                    else self.reports.get_nowait()
            except queue.Empty:
                return read
            read = True
            if kind == "progress":
                self.at[names] = (value, total)
                self._report()
            elif kind == "done":
                self.done[names] = value
                self.timings.setdefault("group_cpu_seconds", {})[", ".join(names)] = round(total, 2)
            else:
                self.errors.append(f"{', '.join(names)}: {value}")

    def _report(self) -> None:
        if self.progress is not None and self.at:
            self.progress(*min(self.at.values()))


def _close(events: object) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()
