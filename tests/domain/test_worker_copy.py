"""``Worker.__deepcopy__`` (what the event store's aggregate cache hands out on every load)
equals the generic deep copy, and a copy changed by commands leaves the original alone."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.context import CommandContext
from domain.errors import DomainError
from domain.resources import Resources
from domain.worker import Worker
from domain.worker_template import parse_templates_yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = {s.name: s for s in parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())}[
    "personal-standard"]
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CTX = CommandContext(at=AT, actor="system:test")


def _state(worker: Worker) -> dict[str, Any]:
    values = {k: v for k, v in vars(worker).items() if k != "ledger"}
    values["reservations"] = worker.reservations()
    return values


def _generic_deepcopy(worker: Worker) -> Worker:
    """The copy ``copy.deepcopy`` made before ``Worker.__deepcopy__`` existed."""
    clone = object.__new__(Worker)
    vars(clone).update(copy.deepcopy(vars(worker)))
    return clone


def _running_worker(holds: list[tuple[int, int]]) -> Worker:
    worker = Worker.request(SPEC, CTX, worker_id="Worker-copy")
    worker.start_provisioning("i-1", CTX, region="r", expected_ready_at=AT)
    worker.mark_ready("10.0.0.1", CTX)
    for n, (start, minutes) in enumerate(holds):
        try:
            worker.reserve(f"LabletInstance-{n}", Resources(cpu_cores=2, memory_gb=4, storage_gb=10), 2,
                           ["serial_1"], AT + timedelta(minutes=start), AT + timedelta(minutes=start + minutes), CTX)
        except DomainError:
            continue
    worker.collect_events()  # as loaded: nothing pending
    return worker


holds = st.lists(st.tuples(st.integers(0, 600), st.integers(15, 240)), max_size=12)


@settings(max_examples=40, deadline=None)
@given(holds=holds, release=st.integers(0, 11))
def test_the_copy_equals_the_generic_one_and_is_independent(holds: list[tuple[int, int]], release: int) -> None:
    worker = _running_worker(holds)
    before = _state(worker)
    clone = copy.deepcopy(worker)
    assert _state(clone) == _state(_generic_deepcopy(worker)) == before
    # Commands on the copy: the original does not move.
    clone.release(f"LabletInstance-{release}", CTX)
    clone.reserve("LabletInstance-new", Resources(cpu_cores=1, memory_gb=1, storage_gb=1), 1, [],
                  AT + timedelta(days=2), AT + timedelta(days=2, hours=1), CTX)
    clone.start_draining("test", CTX)
    assert _state(worker) == before
    assert worker.collect_events() == []
