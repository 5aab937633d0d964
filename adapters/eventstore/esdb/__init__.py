"""EventStoreDB persistence for the eventsourcing library, over ``esdbclient``.

``PERSISTENCE_MODULE=adapters.eventstore.esdb`` with ``ESDB_URI`` (see ``factory``);
``open_event_store("esdb", esdb_uri=…)`` does that for LRM. Design and caveats:
docs/event-store-esdb.md.
"""

from adapters.eventstore.esdb.factory import PERSISTENCE_MODULE, Factory, esdb_env
from adapters.eventstore.esdb.recorders import (
    EsdbAggregateRecorder,
    EsdbApplicationRecorder,
    PartialSaveError,
)
from adapters.eventstore.esdb.subscription import EsdbSubscription

__all__ = [
    "PERSISTENCE_MODULE",
    "EsdbAggregateRecorder",
    "EsdbApplicationRecorder",
    "EsdbSubscription",
    "Factory",
    "PartialSaveError",
    "esdb_env",
]
