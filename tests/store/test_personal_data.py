"""Personal fields are sealed in stored events with a key per person; forgetting destroys it.

Run on every backend: the raw stored bytes never hold an identity, a store reopened (another
process) reads clear values while the key exists and ``erased-…`` once it is gone, and other
people's data is untouched.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from eventsourcing.persistence import JSONTranscoder
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.eventstore.person_keys import MemoryPersonKeys
from adapters.eventstore.personal_data_mapper import SEALED_PREFIX, PersonalDataMapper
from adapters.eventstore.store import EventStore
from domain.context import CommandContext
from domain.instance import InstanceRequirements, LabletInstance
from domain.personal_data import erased_name
from domain.timeslot import Timeslot
from tests.store.conftest import Backend

AT = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)
ALICE = "alice.liddell@example.org"
BOB = "bob.builder@example.org"


def book(store: EventStore, owner: str, actor: str) -> str:
    instance = LabletInstance.request_with(
        definition_name="ccna", definition_version="1.0.0",
        requirements=InstanceRequirements(cpu_cores=2, memory_gb=4, storage_gb=10, node_count=2),
        grading_enabled=False, owner_id=owner,
        timeslot=Timeslot(AT + timedelta(hours=1), AT + timedelta(hours=2)),
        ctx=CommandContext(at=AT, actor=actor),
    )
    store.save(instance)
    return instance.id


def raw_states(store: EventStore) -> list[bytes]:
    return [bytes(n.state) for n in store.app.recorder.select_notifications(start=0, limit=10_000)]


def test_stored_events_hold_no_identity_and_read_back_clear(backend: Backend) -> None:
    store = backend.event_store()
    alice_lab = book(store, ALICE, f"user:{ALICE}")
    assert all(ALICE.encode() not in state for state in raw_states(store))
    assert any(SEALED_PREFIX.encode() in state for state in raw_states(store))
    loaded = backend.event_store().get(alice_lab)  # reopened: another process's view
    assert loaded.owner_id == ALICE
    [event] = store.read_stream(alice_lab)
    assert event.event.actor == f"user:{ALICE}"


def test_a_forgotten_person_reads_as_erased_everywhere_others_unchanged(backend: Backend) -> None:
    store = backend.event_store()
    alice_lab = book(store, ALICE, f"user:{ALICE}")
    bob_lab = book(store, BOB, "service:exam")
    subject_id = store.app.person_keys.forget(ALICE)
    assert subject_id is not None
    assert store.app.person_keys.forget(ALICE) is None  # already gone

    reopened = backend.event_store()  # a fresh process: no cache of the destroyed key
    erased = erased_name(subject_id)
    forgotten = reopened.get(alice_lab)
    assert forgotten.owner_id == erased
    assert reopened.read_stream(alice_lab)[0].event.actor == f"user:{erased}"
    kept = reopened.get(bob_lab)
    assert kept.owner_id == BOB
    assert reopened.read_stream(bob_lab)[0].event.actor == "service:exam"  # a service is no person
    # The audit trail stays whole: same events, same order, same count.
    assert [e.stream_id for e in reopened.read_all()] == [alice_lab, bob_lab]


def test_two_processes_share_one_key_per_person(backend: Backend) -> None:
    first, second = backend.event_store(), backend.event_store()
    a = first.app.person_keys.key_for(ALICE)
    b = second.app.person_keys.key_for(ALICE)
    if backend.kind != "memory":  # memory: both names are the one store
        assert a == b


@settings(max_examples=60, deadline=None)
@given(owner=st.text(min_size=1, max_size=300), role=st.sampled_from(["user", "instructor", "admin", "service"]),
       subject=st.text(min_size=1, max_size=50))
def test_any_text_survives_sealing(owner: str, role: str, subject: str) -> None:
    mapper = PersonalDataMapper(_transcoder(), MemoryPersonKeys())
    state: dict[str, Any] = {"owner_id": owner, "metadata": {"actor": f"{role}:{subject}"}}
    sealed = mapper._seal_state(state)
    assert sealed["owner_id"].startswith(SEALED_PREFIX)
    opened = {"owner_id": sealed["owner_id"], "metadata": dict(sealed["metadata"])}
    mapper._open_state(opened)
    assert opened == state
    assert state["owner_id"] == owner  # the live event is never changed


def _transcoder() -> JSONTranscoder:
    return JSONTranscoder()
