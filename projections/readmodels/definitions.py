"""Read model of lablet definitions: one document per name, one per published version."""

from __future__ import annotations

from typing import Any

from domain.definition import LabletDefinition
from domain.worker_template import LicenseType
from projections.events import StoredEvent
from projections.projection import Projection
from projections.readmodel import (
    Document,
    Page,
    ReadModelStore,
    ReadModelTx,
    Table,
    decode_cursor,
    encode_cursor,
)
from projections.readmodels.templates import check_key_cursor

# One boolean column per licence type: "accepts PERSONAL" is then an indexed equality.
LICENSE_COLUMNS = {t: f"license_{t.value.lower()}" for t in LicenseType}

DEFINITIONS = Table("definitions", {"deprecated": bool, **{c: bool for c in LICENSE_COLUMNS.values()}})
# Key ``<name>@<version>``; ``seq`` orders a definition's versions as published (= semver order).
DEFINITION_VERSIONS = Table("definition_versions", {"name": str, "seq": int})

PREFIX_SCAN_PAGE = 500


class DefinitionsProjection(Projection):
    name = "definitions"
    version = 1
    rebuild_weight = 0.8
    tables = (DEFINITIONS, DEFINITION_VERSIONS)
    handled_events = (LabletDefinition.DefinitionRegistered, LabletDefinition.DefinitionVersionPublished,
                      LabletDefinition.DefinitionDeprecated)

    def handle(self, stored: StoredEvent, tx: ReadModelTx) -> None:
        event = stored.event
        if isinstance(event, LabletDefinition.DefinitionRegistered):
            tx.put(DEFINITIONS.name, event.name, {
                "name": event.name, "latest_version": None, "latest": None, "versions": [],
                "deprecated": False, "deprecation_reason": "",
                "created_at": event.occurred_at, "updated_at": event.occurred_at,
                "position": stored.position,
                **{column: False for column in LICENSE_COLUMNS.values()},
            })
        elif isinstance(event, LabletDefinition.DefinitionVersionPublished):
            doc = tx.get(DEFINITIONS.name, event.name)
            if doc is None:
                return
            version = {**event.definition, "published_position": stored.position,
                       "seq": len(doc["versions"]) + 1}
            tx.put(DEFINITION_VERSIONS.name, f"{event.name}@{event.version}", version)
            affinity = set(event.definition.get("license_affinity", ()))
            doc.update({
                "latest_version": event.version,
                "latest": event.definition,
                "versions": [*doc["versions"], event.version],
                "updated_at": event.occurred_at,
                "position": stored.position,
                **{column: kind.value in affinity for kind, column in LICENSE_COLUMNS.items()},
            })
            tx.put(DEFINITIONS.name, event.name, doc)
        elif isinstance(event, LabletDefinition.DefinitionDeprecated):
            doc = tx.get(DEFINITIONS.name, event.name)
            if doc is None:
                return
            doc.update({"deprecated": True, "deprecation_reason": event.reason,
                        "deprecated_at": event.occurred_at, "updated_at": event.occurred_at,
                        "position": stored.position})
            tx.put(DEFINITIONS.name, event.name, doc)


class DefinitionQueries:
    def __init__(self, store: ReadModelStore) -> None:
        self.store = store

    def get(self, name: str) -> Document | None:
        return self.store.get(DEFINITIONS.name, name)

    def version(self, name: str, version: str) -> Document | None:
        return self.store.get(DEFINITION_VERSIONS.name, f"{name}@{version}")

    def list(
        self,
        *,
        name_prefix: str | None = None,
        deprecated: bool | None = None,
        license_type: LicenseType | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Definitions by name; ``name_prefix`` is applied while scanning (definitions are few,
        and a database collation may not sort ``-`` the way Python does, so no early stop)."""
        where: dict[str, Any] = {}
        if deprecated is not None:
            where["deprecated"] = deprecated
        if license_type is not None:
            where[LICENSE_COLUMNS[license_type]] = True
        after = check_key_cursor(cursor)
        if not name_prefix:
            return self.store.query(DEFINITIONS.name, where=where, limit=limit, after=after)
        found: list[Document] = []
        while True:
            page = self.store.query(DEFINITIONS.name, where=where, limit=PREFIX_SCAN_PAGE, after=after)
            for doc in page.items:
                name = doc["name"]
                if name.startswith(name_prefix):
                    found.append(doc)
                    if len(found) > limit:
                        last = found[limit - 1]["name"]
                        return Page(found[:limit], encode_cursor(last, last))
            if page.next_cursor is None:
                return Page(found, None)
            after = page.next_cursor

    def versions(self, name: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        if cursor is not None:
            value, _key = decode_cursor(cursor)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"invalid cursor {cursor!r}")
        return self.store.query(DEFINITION_VERSIONS.name, where={"name": name}, order_by="seq",
                                limit=limit, after=cursor)


PROJECTIONS = (DefinitionsProjection(),)
