"""Per-event-class dispatch, resolved once per concrete class instead of per event.

A projection that reacts differently to each event class used to walk an ``isinstance``
chain for every event (up to 18 tests for the last branch). ``ByEventClass`` maps the
registered classes to what they need (a function, a state) and answers ``table[type(event)]``
with the value of the event class's most specific registered base (its MRO order), or
``default``; the answer is stored under the concrete class, so every later event of that
class costs one dict hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class ByEventClass(dict[type, V], Generic[V]):
    def __init__(self, registered: Mapping[type, V], default: V) -> None:
        super().__init__()
        self.registered = dict(registered)
        self.default = default

    def __missing__(self, event_type: type) -> V:
        value = self.default
        for base in event_type.__mro__:
            if base in self.registered:
                value = self.registered[base]
                break
        self[event_type] = value
        return value
