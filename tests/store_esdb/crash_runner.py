"""Subprocess for the EventStoreDB crash test: run a projection, maybe dying mid-batch.

    python -m tests.store_esdb.crash_runner '<settings json>' <exit_after_n_events> <batch_size>
"""

from __future__ import annotations

import json
import sys

from adapters.eventstore import open_event_store
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from projections.runner import ProjectionRunner
from tests.store.projections_for_tests import ExitAfter


def main() -> None:
    settings = json.loads(sys.argv[1])
    exit_after, batch_size = int(sys.argv[2]), int(sys.argv[3])
    events = open_event_store("esdb", esdb_uri=settings["esdb_uri"], schema=settings["schema"])
    models = SqliteReadModelStore(settings["readmodels_path"])
    runner = ProjectionRunner(events, models, [ExitAfter(exit_after)], batch_size=batch_size)
    print(runner.catch_up())
    models.close()
    events.close()


if __name__ == "__main__":
    main()
