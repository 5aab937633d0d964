"""Settings for replaying whole models (a rebuild not beside live batches), put back after.

- The store may tune itself for writing whole tables (``bulk_writes``: SQLite's page cache
  and WAL checkpoint interval, adapters/eventstore/readmodel_sqlite.py).
- The cyclic garbage collector is kept off the documents already built: a rebuild keeps
  tens of thousands of documents in memory (a batch's, and those carried to the next), and
  every full collection walked all of them again (about a fifth of a rebuild's CPU time).
  Before each batch, everything alive is frozen (``gc.freeze``: left out of collections;
  still freed by reference counting when dropped), so a collection looks only at what the
  batch allocated; unfrozen at the end. Not done when something else froze objects (a
  pre-forking server): its freeze is not ours to undo.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from projections.readmodel import ReadModelStore


@contextmanager
def replaying_whole_models(store: ReadModelStore) -> Iterator[Callable[[], None]]:
    """Yields what to call before each batch."""
    bulk = getattr(store, "bulk_writes", None)
    with bulk() if bulk is not None else nullcontext():
        ours = gc.isenabled() and gc.get_freeze_count() == 0
        try:
            yield gc.freeze if ours else _nothing
        finally:
            if ours:
                gc.unfreeze()


def _nothing() -> None:
    return None
