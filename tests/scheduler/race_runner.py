"""One scheduler in its own OS process, for the race test: waits for a start signal (a file),
then places the queue until idle.

``python -m tests.scheduler.race_runner <postgres url> <schema> <go file> <batch size> <name>``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from adapters.clock import VirtualClock
from adapters.eventstore import open_event_store
from processors.scheduler import Scheduler, SchedulerSettings
from tests.scheduler.support import T0


def main() -> None:
    url, schema, go, batch_size, name = sys.argv[1:6]
    store = open_event_store("postgres", postgres_url=url, schema=schema)
    scheduler = Scheduler(store, VirtualClock(T0), settings=SchedulerSettings(batch_size=int(batch_size)), name=name)
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.005)
    report = scheduler.run_until_idle()
    print(report.placed, report.conflicts, flush=True)
    store.close()


if __name__ == "__main__":
    main()
