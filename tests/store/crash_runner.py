"""Subprocess for the crash test: run a projection over the shared stores, maybe dying.

    python -m tests.store.crash_runner '<settings json>' <exit_after_n_events> <batch_size>
"""

from __future__ import annotations

import json
import sys

from adapters.eventstore import open_event_store
from adapters.eventstore.readmodel_postgres import PostgresReadModelStore
from adapters.eventstore.readmodel_sqlite import SqliteReadModelStore
from projections.runner import ProjectionRunner
from tests.store.projections_for_tests import ExitAfter


def main() -> None:
    settings = json.loads(sys.argv[1])
    exit_after, batch_size = int(sys.argv[2]), int(sys.argv[3])
    kind = settings["kind"]
    events = open_event_store(kind, sqlite_path=settings["sqlite_path"],
                              postgres_url=settings["postgres_url"], schema=settings["schema"])
    models = (SqliteReadModelStore(settings["readmodels_path"]) if kind == "sqlite"
              else PostgresReadModelStore(settings["postgres_url"], settings["schema"]))
    runner = ProjectionRunner(events, models, [ExitAfter(exit_after)], batch_size=batch_size)
    applied = runner.catch_up()
    print(applied)
    models.close()
    events.close()


if __name__ == "__main__":
    main()
