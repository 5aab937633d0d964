"""CloudEvent ``type`` of a domain event: ``ccm.<kind>.<event>``.

Rule (overrides below win):

- kind: the aggregate class name split into words, lowercased, joined by dots
  (``LabletInstance`` -> ``lablet.instance``, ``WorkerTemplate`` -> ``worker.template``);
- event: the event class name split into words, minus a leading run of words that repeats
  the end of the aggregate name (``InstanceScheduled`` in ``LabletInstance`` -> ``scheduled``,
  ``SubscriptionCreated`` in ``WebhookSubscription`` -> ``created``), lowercased and
  dot-joined (``GradingStarted`` -> ``grading.started``).

The aggregate is the class an event is nested in (``LabletInstance.InstanceScheduled``);
an event defined at module level falls back to the stream id prefix of the event.
"""

from __future__ import annotations

import re

TYPE_PREFIX = "ccm"

# Aggregate class name -> kind, where the rule reads badly.
KIND_OVERRIDES: dict[str, str] = {
    "WebhookSubscription": "subscription",
    # Audit aggregates: subscribers care about what was decided or found, not the stream.
    "ScalingDecision": "scaling",
    "CloudReconciliation": "cloud",
}

# Event class name (or "Aggregate.Event" for one aggregate only) -> event part.
EVENT_OVERRIDES: dict[str, str] = {
    "DrainingStarted": "draining",
    "WorkerDrainingStarted": "draining",
    # "logged in" is one verb: not ``user.logged.in``.
    "LabletInstance.UserLoggedIn": "user.logged_in",
    # The event names repeat the head of their aggregate's name, which the rule keeps.
    "ScalingDecision.ScalingAuditStarted": "audit.started",
    "ScalingDecision.ScalingDecided": "decided",
    "ScalingDecision.ScalingActionsRejected": "actions.rejected",
    "CloudReconciliation.CloudReconciled": "reconciled",
}

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$)|[A-Z]?[a-z]+|[0-9]+")
VALID_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def words(name: str) -> list[str]:
    """``CMLLabImported`` -> ``['CML', 'Lab', 'Imported']``."""
    return _WORD.findall(name)


def kind_of(aggregate_name: str) -> str:
    if aggregate_name in KIND_OVERRIDES:
        return KIND_OVERRIDES[aggregate_name]
    return ".".join(w.lower() for w in words(aggregate_name))


def event_part(aggregate_name: str, event_name: str) -> str:
    for key in (f"{aggregate_name}.{event_name}", event_name):
        if key in EVENT_OVERRIDES:
            return EVENT_OVERRIDES[key]
    agg, ev = [w.lower() for w in words(aggregate_name)], [w.lower() for w in words(event_name)]
    # Longest leading run of the event words that equals a tail of the aggregate words.
    for n in range(min(len(agg), len(ev) - 1), 0, -1):
        if ev[:n] == agg[-n:]:
            ev = ev[n:]
            break
    return ".".join(ev)


def cloudevent_type(aggregate_name: str, event_name: str) -> str:
    value = f"{TYPE_PREFIX}.{kind_of(aggregate_name)}.{event_part(aggregate_name, event_name)}"
    if not VALID_TYPE.match(value):
        raise ValueError(f"cannot derive a CloudEvent type from {aggregate_name}.{event_name}: {value!r}")
    return value


# Events declared on these base classes belong to whichever aggregate records them.
_GENERIC_OWNERS = frozenset({"LrmAggregate", "BaseAggregate", "Aggregate"})


def aggregate_name_of(event_class: type, stream_id: str | None = None) -> str:
    """The enclosing aggregate's class name, from the qualname or else the stream id."""
    qualname = event_class.__qualname__.split(".")
    if len(qualname) >= 2 and "<locals>" not in qualname[-2] and qualname[-2] not in _GENERIC_OWNERS:
        return qualname[-2]
    if stream_id and "-" in stream_id:
        return stream_id.split("-", 1)[0]
    raise ValueError(f"{event_class.__qualname__} is not nested in an aggregate")


def type_of_class(event_class: type) -> str:
    return cloudevent_type(aggregate_name_of(event_class), event_class.__name__)


def event_classes(aggregate: type) -> list[type]:
    """The events an aggregate records: its nested event classes, minus the generic ``Event``
    base and the ``Created`` class the library adds when the aggregate has its own."""
    from eventsourcing.domain import CanInitAggregate

    from domain.base import DomainEvent

    nested = {
        name: value
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, DomainEvent) and name != "Event"
    }
    own_created = [v for n, v in nested.items() if n != "Created" and issubclass(v, CanInitAggregate)]
    if own_created:
        nested.pop("Created", None)
    return list(nested.values())


def domain_aggregates() -> list[type]:
    """Every LrmAggregate subclass defined in the ``domain`` package (imports all its modules)."""
    import importlib
    import pkgutil

    import domain
    from domain.base import LrmAggregate

    for info in pkgutil.walk_packages(domain.__path__, "domain."):
        importlib.import_module(info.name)
    found, todo = [], [LrmAggregate]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            # Only the aggregates themselves: a part an aggregate is assembled from (e.g.
            # ``InstanceEvents`` under ``LabletInstance``) has subclasses and no streams.
            if sub.__module__.startswith("domain.") and sub not in found and not _has_domain_subclass(sub):
                found.append(sub)
    return sorted(found, key=lambda c: c.__name__)


def _has_domain_subclass(cls: type) -> bool:
    return any(sub.__module__.startswith("domain.") for sub in cls.__subclasses__())


# Fields every event has: not part of ``data``.
ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "metadata", "originator_topic"})


def catalog() -> list[tuple[str, str, list[str]]]:
    """(type, "Aggregate.Event", data fields) for every domain event, sorted by type."""
    import dataclasses

    rows = []
    for aggregate in domain_aggregates():
        for cls in event_classes(aggregate):
            names = [f.name for f in dataclasses.fields(cls) if f.name not in ENVELOPE_FIELDS]
            rows.append((cloudevent_type(aggregate.__name__, cls.__name__), f"{aggregate.__name__}.{cls.__name__}", names))
    return sorted(rows)
