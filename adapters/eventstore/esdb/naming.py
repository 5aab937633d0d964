"""How LRM names things in EventStoreDB: streams, event types and the ``$all`` filters.

- An aggregate's stream is its id (``LabletInstance-<uuid>``), so the server's ``$ce-``
  (by category) and ``$et-`` (by event type) projections work unchanged.
- An event's type is the library's topic of its class (``domain.x:Aggregate.Event``), so
  ``$all`` can be filtered by topic on the server.
- A snapshot lives in ``snapshot-<stream>`` with type ``snapshot/<topic>``: the ``/``
  keeps snapshots out of the ``$all`` filter (no topic contains one).
- An optional namespace prefixes every stream and type with ``<namespace>/``: several
  deployments (or test runs) can then share one server without seeing each other.
  Without a namespace the filter also rejects every ``/``-prefixed name, so a namespaced
  run never leaks into an un-namespaced one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_NAMESPACE = re.compile(r"^[A-Za-z0-9_]{1,63}$")
# A topic is "module.path:Qual.Name" (eventsourcing.utils.get_topic): one colon, and
# no "$" (system events) nor "/" (namespaces, snapshots) anywhere.
_TOPIC = r"[^$/:\s][^/:\s]*:[^/:\s]+"
SNAPSHOT_STREAM_PREFIX = "snapshot-"
SNAPSHOT_TYPE_PREFIX = "snapshot/"


def check_namespace(namespace: str) -> str:
    if namespace and not _NAMESPACE.match(namespace):
        raise ValueError(f"invalid EventStoreDB namespace {namespace!r}: use letters, digits, '_'")
    return namespace


@dataclass(frozen=True)
class Naming:
    namespace: str = ""
    _prefix: str = field(init=False, repr=False)
    _ours: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        prefix = f"{self.namespace}/" if self.namespace else ""
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_ours", re.compile(self.type_filter()))

    # -- aggregate events ------------------------------------------------------------
    def stream(self, originator_id: str) -> str:
        return self._prefix + originator_id

    def originator_id(self, stream_name: str) -> str:
        return _strip(stream_name, self._prefix)

    def event_type(self, topic: str) -> str:
        return self._prefix + topic

    def topic(self, event_type: str) -> str:
        return _strip(event_type, self._prefix)

    def is_ours(self, event_type: str) -> bool:
        """Whether a recorded event of ``$all`` is one of our aggregate events."""
        return self._ours.fullmatch(event_type) is not None

    # -- snapshots --------------------------------------------------------------------
    def snapshot_stream(self, originator_id: str) -> str:
        return self._prefix + SNAPSHOT_STREAM_PREFIX + originator_id

    def snapshot_type(self, topic: str) -> str:
        return self._prefix + SNAPSHOT_TYPE_PREFIX + topic

    def snapshot_topic(self, event_type: str) -> str:
        return _strip(_strip(event_type, self._prefix), SNAPSHOT_TYPE_PREFIX)

    # -- server-side filters (unanchored: esdbclient anchors them) -------------------------
    def type_filter(self, topics: Sequence[str] = ()) -> str:
        """Regex of the event types to read from ``$all``: ours, or only ``topics``."""
        if topics:
            alternatives = "|".join(re.escape(self.event_type(t)) for t in topics)
        else:
            alternatives = re.escape(self._prefix) + _TOPIC
        return f"(?:{alternatives})"


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix):] if prefix and name.startswith(prefix) else name
