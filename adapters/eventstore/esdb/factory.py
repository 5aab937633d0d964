"""``Factory``: the eventsourcing library's infrastructure factory for EventStoreDB.

Selected with ``PERSISTENCE_MODULE=adapters.eventstore.esdb``; settings (optionally
prefixed with the application's name, like every library setting):

- ``ESDB_URI``: ``esdb://host:2113?Tls=false``, ``esdb+discover://…`` (TLS options such
  as ``tlsCaFile`` go in the URI), or ``fake://<name>`` for the in-process fake;
- ``ESDB_NAMESPACE`` (optional): prefixes streams and event types with ``<namespace>/``
  so several deployments or test runs can share one server.

Tracking records are not kept in EventStoreDB: read models and their checkpoints stay
in the SQL read-model store (SQLite or PostgreSQL), written in one transaction there.
"""

from __future__ import annotations

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    InfrastructureFactoryError,
    NotSupportedError,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType

from adapters.eventstore.esdb.client import EsdbClient, connect
from adapters.eventstore.esdb.naming import Naming, check_namespace
from adapters.eventstore.esdb.recorders import (
    BINARY,
    JSON,
    EsdbAggregateRecorder,
    EsdbApplicationRecorder,
)

PERSISTENCE_MODULE = "adapters.eventstore.esdb"


class Factory(InfrastructureFactory[TrackingRecorder]):
    ESDB_URI = "ESDB_URI"
    ESDB_NAMESPACE = "ESDB_NAMESPACE"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        uri = self.env.get(self.ESDB_URI)
        if not uri:
            raise InfrastructureFactoryError(f"{self.ESDB_URI} is required for EventStoreDB")
        self.naming = Naming(self.env.get(self.ESDB_NAMESPACE, "") or "")
        self.client: EsdbClient = connect(uri)

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return EsdbAggregateRecorder(self.client, self.naming, for_snapshots=purpose == "snapshots",
                                     content_type=self._content_type())

    def application_recorder(self) -> ApplicationRecorder:
        return EsdbApplicationRecorder(self.client, self.naming, content_type=self._content_type())

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        raise NotSupportedError("tracking stays in the SQL read-model store, not in EventStoreDB")

    def process_recorder(self) -> ProcessRecorder:
        raise NotSupportedError("EventStoreDB cannot record events and tracking atomically")

    def close(self) -> None:
        self.client.close()

    def _content_type(self) -> str:
        # The library's default mapper writes plain JSON; ciphers, compressors and other
        # transcoders do not, and the server's UI and projections should not parse those.
        encoded = any(self.env.get(key) for key in (
            self.CIPHER_TOPIC, "CIPHER_KEY", self.COMPRESSOR_TOPIC, self.TRANSCODER_TOPIC))
        return BINARY if encoded else JSON


def esdb_env(uri: str, namespace: str = "") -> dict[str, str]:
    """The library settings that select this module for ``uri``."""
    env = {"PERSISTENCE_MODULE": PERSISTENCE_MODULE, Factory.ESDB_URI: uri}
    if namespace:
        env[Factory.ESDB_NAMESPACE] = check_namespace(namespace)
    return env
