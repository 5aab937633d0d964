"""The library's ``Mapper`` with personal fields sealed by a key per person.

``Mapper`` turns a domain event into stored bytes and back (the hook the library offers for
ciphers). This one seals the fields ``domain.personal_data`` names before the transcoder runs
and opens them after it decodes, so aggregates, projections and processors see clear values
while the stored event holds only ``pii:v1:<subject_id>:<role>:<ciphertext>``. Once the
person's key is destroyed, opening yields ``erased-…`` instead (the same for every process and
every rebuild). Values written before sealing existed stay as they were (nothing to open).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Cipher, Compressor, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import resolve_topic

from adapters.eventstore.decoded_events import DecodedEvents

from domain.personal_data import ACTOR_FIELDS, OWNER_FIELDS, erased_name, person_of_actor
from processors.ports.personal_data import PersonKeys

SEALED_PREFIX = "pii:v1:"
_NONCE_BYTES = 12


class PersonalDataMapper(Mapper[str]):
    def __init__(self, transcoder: Transcoder, keys: PersonKeys, *,
                 compressor: Compressor | None = None, cipher: Cipher | None = None,
                 decoded: DecodedEvents | None = None) -> None:
        super().__init__(transcoder, compressor=compressor, cipher=cipher)
        self.keys = keys
        # Shared by every reader of this store; events with personal data are not kept.
        self.decoded = decoded if decoded is not None else DecodedEvents()
        self._ciphers: dict[bytes, AESGCM] = {}

    # -- write ----------------------------------------------------------------------------
    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = vars(domain_event)
        sealed = self._seal_state(state)
        if sealed is not state:
            clone = object.__new__(type(domain_event))
            object.__setattr__(clone, "__dict__", sealed)
            domain_event = clone
        return super().to_stored_event(domain_event)

    def _seal_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``state`` with personal values sealed, or ``state`` itself if it has none."""
        result = state
        for name, value in state.items():
            if not isinstance(value, str) or not value:
                continue
            sealed = self._seal_field(name, value)
            if sealed is not None:
                if result is state:
                    result = dict(state)
                result[name] = sealed
        for nested in ("metadata", "state"):  # every event's metadata; a snapshot's aggregate state
            inner = state.get(nested)
            if isinstance(inner, dict):
                sealed_inner = self._seal_state(inner)
                if sealed_inner is not inner:
                    if result is state:
                        result = dict(state)
                    result[nested] = sealed_inner
        return result

    def _seal_field(self, name: str, value: str) -> str | None:
        if name in OWNER_FIELDS:
            return self._seal(value, person=value, role="")
        if name in ACTOR_FIELDS:
            found = person_of_actor(value)
            if found is not None:
                return self._seal(value, person=found[1], role=found[0])
        return None

    def _seal(self, value: str, *, person: str, role: str) -> str:
        key = self.keys.key_for(person)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher(key.key).encrypt(nonce, value.encode("utf-8", "surrogatepass"),
                                                key.subject_id.encode())
        text = base64.b64encode(nonce + sealed).decode("ascii")
        return f"{SEALED_PREFIX}{key.subject_id}:{role}:{text}"

    # -- read -----------------------------------------------------------------------------
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        stream, version, state = stored_event.originator_id, stored_event.originator_version, stored_event.state
        cls = resolve_topic(stored_event.topic)
        found = self.decoded.get(stream, version, state, cls)
        if found is not None:
            if found.sealed is None:
                return found.event
            # A person's clear values are never kept: a copy of the sealed attributes, opened
            # now (after an erasure: the erased name).
            event = object.__new__(cls)
            object.__setattr__(event, "__dict__", _copy_state(found.sealed))
            self._open_state(vars(event))
            return event
        event = super().to_domain_event(stored_event)
        sealed = _copy_state(vars(event))
        # A dict the transcoder just made: ours to change.
        if self._open_state(vars(event)):
            self.decoded.put(stream, version, state, cls, None, sealed)
        else:
            self.decoded.put(stream, version, state, cls, event)
        return event

    def _open_state(self, state: dict[str, Any]) -> bool:
        """Open the sealed values in place; True if there was any."""
        opened = False
        for name, value in state.items():
            if isinstance(value, str) and value.startswith(SEALED_PREFIX):
                state[name] = self.open(value)
                opened = True
            elif name in ("metadata", "state") and isinstance(value, dict):
                opened = self._open_state(value) or opened
        return opened

    def open(self, sealed: str) -> str:
        """The clear value of a sealed one, or the erased name once the key is gone."""
        subject_id, role, text = sealed[len(SEALED_PREFIX):].split(":", 2)
        key = self.keys.key_of(subject_id)
        if key is None:
            erased = erased_name(subject_id)
            return f"{role}:{erased}" if role else erased
        raw = base64.b64decode(text)
        try:
            clear = self._cipher(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], subject_id.encode())
        except InvalidTag as error:  # a key that exists but does not fit: corruption, not erasure
            raise ValueError(f"personal data of subject {subject_id} does not decrypt") from error
        return clear.decode("utf-8", "surrogatepass")

    def _cipher(self, key: bytes) -> AESGCM:
        cipher = self._ciphers.get(key)
        if cipher is None:
            cipher = self._ciphers[key] = AESGCM(key)
        return cipher


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event's attributes deep enough for ``_open_state`` to change it."""
    copied = dict(state)
    for nested in ("metadata", "state"):
        inner = copied.get(nested)
        if isinstance(inner, dict):
            copied[nested] = _copy_state(inner)
    return copied
