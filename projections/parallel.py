"""Rebuilding independent projections in separate processes, to use more than one core.

Each read model is a pure function of the log, so groups of projections can be rebuilt
side by side: every process reads and decodes the log itself and replays its group into
shadow tables; the database serialises only the commits (SQLite's write lock, PostgreSQL
row locks on checkpoints), so the CPU work runs in parallel. Each group switches over on
its own when caught up (each projection's switch is atomic; there is no cross-model one).

Groups are balanced by each projection's ``rebuild_weight`` (longest first, to the
lightest group). The stores are opened in each process by ``open_stores``, a picklable
top-level callable (the CLI passes one that builds them from the settings).
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from typing import Any

from projections.ports import EventFeed
from projections.projection import Projection
from projections.readmodel import ReadModelStore

OpenStores = Callable[[], tuple[EventFeed, ReadModelStore, Sequence[Projection]]]
Progress = Callable[[int, int], None]


def balanced_groups(projections: Sequence[Projection], count: int) -> list[list[str]]:
    """Projection names in ``count`` groups of about equal total ``rebuild_weight``."""
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(max(1, count))]
    for projection in sorted(projections, key=lambda p: (-p.rebuild_weight, p.name)):
        index = min(range(len(groups)), key=lambda i: groups[i][0])
        weight, names = groups[index]
        groups[index] = (weight + projection.rebuild_weight, [*names, projection.name])
    return [names for _weight, names in groups if names]


def _rebuild_group(open_stores: OpenStores, names: list[str], batch_size: int, reports: Any) -> None:
    from projections.runner import ProjectionRunner

    events, store, projections = open_stores()
    try:
        chosen = [p for p in projections if p.name in names]
        runner = ProjectionRunner(events, store, chosen, batch_size=batch_size)
        count = runner.rebuild_all(lambda done, total: reports.put(("progress", tuple(names), done, total)))
        reports.put(("done", tuple(names), count, 0))
    except BaseException as error:  # reported to the parent, which raises
        reports.put(("error", tuple(names), f"{type(error).__name__}: {error}", 0))
        raise
    finally:
        store.close()
        close = getattr(events, "close", None)
        if close is not None:
            close()


def rebuild_in_processes(
    open_stores: OpenStores,
    projections: Sequence[Projection],
    processes: int,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Rebuild ``projections`` in ``processes`` worker processes; returns the events replayed
    by the slowest group. ``progress(done, total)`` reports the group furthest behind."""
    groups = balanced_groups(projections, processes)
    context = multiprocessing.get_context("spawn")  # no inherited threads or connections
    reports = context.Queue()
    workers = [context.Process(target=_rebuild_group, args=(open_stores, names, batch_size, reports),
                               name=f"rebuild-{index}", daemon=True)
               for index, names in enumerate(groups)]
    for worker in workers:
        worker.start()
    done: dict[tuple[str, ...], int] = {}
    at: dict[tuple[str, ...], tuple[int, int]] = {}
    errors: list[str] = []
    try:
        while len(done) + len(errors) < len(groups):
            try:
                kind, names, value, total = reports.get(timeout=1.0)
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and reports.empty():
                    errors.append("a rebuild process exited without reporting")
                continue
            if kind == "progress":
                at[names] = (value, total)
                if progress is not None:
                    progress(*min(at.values()))
            elif kind == "done":
                done[names] = value
            else:
                errors.append(f"{', '.join(names)}: {value}")
    finally:
        for worker in workers:
            worker.join(timeout=30)
    if errors:
        raise RuntimeError("rebuild failed: " + "; ".join(errors))
    return max(done.values(), default=0)
