"""The benchmark's event log: a fleet, then labs through their whole life (13 events each).

Building a million events through the aggregates one lab at a time costs ~125 CPU seconds
(and, with a new person per lab, one committed key insert each: minutes of wall time), so
each *student* gets one lab run through the real aggregates and encoded by the
application's mapper (personal fields sealed with the student's key), and every further
lab of that student is a stamped copy of those stored bytes: new instance id, new
causation ids, the lab's worker, its lab and decision ids, its times shifted to its slot.
Topics, payloads and the encoding stay the domain's own (tests/store/test_bench_log.py
rehydrates stamped aggregates); the copies are written in large batched transactions
straight through the library's recorder.

Logs are cached under the temporary directory by (events, workers, students, seed), so a
second run rebuilds at once; ``fresh=True`` writes a new one.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from adapters.eventstore import open_event_store
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.timeslot import Timeslot
from domain.worker import Worker
from domain.worker_template import WorkerTemplate, parse_templates_yaml

ROOT = Path(__file__).resolve().parents[2]
GENERATOR_VERSION = 2  # bump when the log's shape changes: cached logs of older shapes are ignored
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
EVENTS_PER_LAB = 13  # 11 on the instance, CapacityReserved + CapacityReleased on its worker
WORKER_EVENTS = 3  # requested, provisioning started, ready
SLOT = timedelta(minutes=70)  # a worker's labs, one after another
BATCH_EVENTS = 20_000  # stored events per insert transaction
TEMPLATE_IP = "10.254.254.254"
REQ = InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=2, port_names=("serial_1", "vnc_1"),
                           license_affinity=("PERSONAL", "ENTERPRISE"), max_duration_minutes=120)
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATETIME = re.compile(rb'"_type_":"datetime_iso","_data_":"([^"]+)"')
_SUBJECT = re.compile(rb"pii:v1:([0-9a-f-]{36}):")

Progress = Callable[[int, int], None]


def ctx(at: datetime, actor: str) -> CommandContext:
    return CommandContext(at=at, actor=actor)


def worker_template() -> WorkerTemplate:
    return next(t for t in parse_templates_yaml((ROOT / "config" / "worker-templates.yaml").read_text())
                if t.name == "personal-standard")


def run_lab(worker: Worker, owner: str, number: int | str, start: datetime) -> LabletInstance:
    """One lab's whole life through the aggregates (its worker reserves and releases it)."""
    end = start + timedelta(minutes=60)
    instance = LabletInstance.request_with(
        definition_name="ccna-basic-routing", definition_version="1.0.0", requirements=REQ,
        grading_enabled=False, owner_id=owner, timeslot=Timeslot(start, end),
        ctx=ctx(start - timedelta(hours=1), "service:exam"))
    hold_start, hold_end = start - timedelta(minutes=15), end + timedelta(minutes=5)
    c = ctx(start - timedelta(minutes=59), "system:scheduler")
    ports = worker.reserve(instance.id, REQ.resources, REQ.node_count, list(REQ.port_names), hold_start, hold_end,
                           c, license_affinity=REQ.license_affinity)
    instance.schedule(worker.id, ports, hold_start, hold_end, f"decision-{number}", c)
    instance.start_instantiation(1, ctx(hold_start, "system:scheduler"))
    instance.record_lab_imported(f"lab-{number}", ctx(hold_start, "system:instance-controller"))
    instance.record_lab_started(ctx(hold_start, "system:instance-controller"))
    instance.mark_ready({"host": worker.ip, "login_url": "https://sim/"},
                        ctx(hold_start + timedelta(minutes=3), "system:instance-controller"))
    instance.login(ctx(start + timedelta(minutes=2), f"user:{owner}"), source="api")
    instance.request_stop("timeslot_end", ctx(end, "system:instance-controller"))
    instance.mark_stopped(ctx(end + timedelta(minutes=1), "system:instance-controller"))
    instance.archive(ctx(end + timedelta(minutes=2), "system:instance-controller"))
    instance.terminate(None, ctx(end + timedelta(minutes=2), "system:instance-controller"))
    worker.release(instance.id, ctx(end + timedelta(minutes=2), "system:instance-controller"), reason="archived")
    return instance


def ready_worker(spec: WorkerTemplate, n: int, ip: str) -> Worker:
    worker = Worker.request(spec, ctx(T0, "system:autoscaler"))
    worker.start_provisioning(f"i-{n:017x}", ctx(T0, "system:worker-controller"))
    worker.mark_ready(ip, ctx(T0 + timedelta(minutes=20), "system:worker-controller"))
    return worker


@dataclass(frozen=True)
class Stamp:
    """A stored state cut at its tokens once, so a copy is a join (no regex per copy)."""

    literals: tuple[bytes, ...]  # one more than tokens
    tokens: tuple[bytes, ...]

    @classmethod
    def cut(cls, pattern: re.Pattern[bytes], state: bytes) -> Stamp:
        literals, tokens, at = [], [], 0
        for match in pattern.finditer(state):
            literals.append(state[at:match.start()])
            tokens.append(match.group(0))
            at = match.end()
        literals.append(state[at:])
        return cls(tuple(literals), tuple(tokens))

    def render(self, mapping: dict[bytes, bytes]) -> bytes:
        out = [self.literals[0]]
        for token, literal in zip(self.tokens, self.literals[1:], strict=True):
            out += (mapping[token], literal)
        return b"".join(out)


@dataclass(frozen=True)
class LabTemplate:
    """One student's lab as stored bytes, and what a copy must change in them."""

    instance_events: list[tuple[int, str, Stamp]]  # the instance stream: version, topic, state
    worker_events: list[tuple[str, Stamp]]  # CapacityReserved, CapacityReleased: topic, state
    instance_id: Stamp
    uuids: dict[bytes, bytes]  # token -> its first 24 characters (a copy appends its number)
    fixed: dict[bytes, str]  # tokens with a per-copy format: worker id, ip, lab and decision ids
    datetimes: dict[bytes, datetime]

    def stamp(self, number: int, worker: Worker, slot: int, shifted: dict[bytes, bytes]) -> list[StoredEvent]:
        """The stored events of lab ``number`` on ``worker``'s ``slot``-th turn."""
        mapping = {token: prefix + b"%012x" % number for token, prefix in self.uuids.items()}
        mapping.update(shifted)
        values = {"worker": worker.id, "ip": worker.ip or "", "n": str(number)}
        mapping.update({token: fmt.format(**values).encode() for token, fmt in self.fixed.items()})

        instance_id = self.instance_id.render(mapping).decode()
        out = [StoredEvent(instance_id, version, topic, state.render(mapping))
               for version, topic, state in self.instance_events]
        base = WORKER_EVENTS + 2 * slot
        out.extend(StoredEvent(worker.id, base + i, topic, state.render(mapping))
                   for i, (topic, state) in enumerate(self.worker_events))
        return out


def make_template(mapper: Any, spec: WorkerTemplate, student: str) -> LabTemplate:
    """``student``'s lab at slot 0 on a template worker (never stored), through the aggregates."""
    worker = ready_worker(spec, 0, TEMPLATE_IP)
    worker.collect_events()  # its own first events are the fleet's, not the lab's
    instance = run_lab(worker, student, "T", T0 + timedelta(hours=1))
    instance_events = [mapper.to_stored_event(e) for e in instance.collect_events()]
    worker_events = [mapper.to_stored_event(e) for e in worker.collect_events()]
    states = [e.state for e in (*instance_events, *worker_events)]
    if not all(s.startswith(b"{") for s in states):
        raise RuntimeError("the benchmark stamps plain JSON events: run it without a compressor or cipher")
    subjects = {m.group(1) for s in states for m in _SUBJECT.finditer(s)}  # the student's key: kept
    worker_uuid = str(worker.id).split("-", 1)[1].encode()
    uuids = {u: u[:24] for s in states for u in _UUID.findall(s) if u not in subjects and u != worker_uuid}
    uuids.update({u: u[:24] for u in _UUID.findall(instance.id.encode())})
    fixed = {str(worker.id).encode(): "{worker}", f'"{TEMPLATE_IP}"'.encode(): '"{ip}"',
             b'"lab-T"': '"lab-{n}"', b'"decision-T"': '"decision-{n}"'}
    datetimes = {m.group(1): datetime.fromisoformat(m.group(1).decode()) for s in states
                 for m in _DATETIME.finditer(s)}
    # Longest first: the worker id contains a uuid, a datetime never overlaps either.
    tokens = sorted([*uuids, *fixed, *(b'"' + d + b'"' for d in datetimes)], key=len, reverse=True)
    pattern = re.compile(b"|".join(re.escape(t) for t in tokens))
    return LabTemplate([(e.originator_version, e.topic, Stamp.cut(pattern, e.state)) for e in instance_events],
                       [(e.topic, Stamp.cut(pattern, e.state)) for e in worker_events],
                       Stamp.cut(pattern, instance.id.encode()), uuids, fixed,
                       {b'"' + d + b'"': at for d, at in datetimes.items()})


def shifted_datetimes(template: LabTemplate, slot: int) -> dict[bytes, bytes]:
    delta = SLOT * slot
    return {token: b'"' + (at + delta).isoformat().encode() + b'"' for token, at in template.datetimes.items()}


def generate(store: Any, events: int, workers: int, students: int, seed: int, progress: Progress) -> int:
    """Write about ``events`` events into ``store`` (an empty SQLite event store); returns the head."""
    rng = random.Random(seed)
    spec = worker_template()
    fleet = [ready_worker(spec, n, f"10.0.{n // 250}.{n % 250}") for n in range(workers)]
    store.save(*fleet)
    labs = max(1, (events - WORKER_EVENTS * workers) // EVENTS_PER_LAB)
    mapper, recorder = store.app.mapper, store.app.recorder
    templates = [make_template(mapper, spec, f"student-{s}") for s in range(max(1, min(students, labs)))]
    order = list(range(len(templates)))
    shifted: dict[tuple[int, int], dict[bytes, bytes]] = {}
    batch: list[StoredEvent] = []
    for number in range(labs):
        worker, slot = fleet[number % workers], number // workers
        if number % len(order) == 0:
            rng.shuffle(order)  # students book in a different order every round
        t = order[number % len(order)]
        template = templates[t]
        at = shifted.get((t, slot))
        if at is None:
            at = shifted[(t, slot)] = shifted_datetimes(template, slot)
        batch.extend(template.stamp(number, worker, slot, at))
        if len(batch) >= BATCH_EVENTS or number == labs - 1:
            recorder.insert_events(batch)
            batch = []
            progress(number + 1, labs)
        if slot != (number + 1) // workers:
            shifted.clear()  # a slot's times are needed only while its labs are written
    return int(store.max_position())


def cached_log(events: int, workers: int, students: int, seed: int, progress: Progress,
               *, fresh: bool = False) -> tuple[Path, bool]:
    """The path of a generated log (SQLite event store file) and whether it was generated now."""
    root = Path(os.environ.get("LRM_BENCH_CACHE", tempfile.gettempdir()))
    path = root / f"lrm-bench-log-v{GENERATOR_VERSION}-{events}-{workers}-{students}-{seed}.sqlite3"
    if path.exists() and not fresh:
        return path, False
    building = Path(tempfile.mkdtemp(prefix="lrm-bench-log-", dir=root))
    try:
        store = open_event_store("sqlite", sqlite_path=building / "events.sqlite3")
        try:
            generate(store, events, workers, students, seed, progress)
        finally:
            store.close()
        wal = building / "events.sqlite3-wal"
        if wal.exists() and wal.stat().st_size:
            raise RuntimeError(f"{wal} was not checkpointed on close: the log would be incomplete")
        os.replace(building / "events.sqlite3", path)  # complete or absent: never a half-written log
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return path, True
