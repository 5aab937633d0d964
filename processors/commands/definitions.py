"""Lablet definitions (SPEC §3.2): publish a version (lab YAML into the artifact store), deprecate.

The lab YAML is analysed (``domain.lab_yaml.analyse``) and stored content-addressed
(``lab-yaml/<name>/<sha256>.yaml``), so a version's ``lab_yaml_uri`` always names exactly
the bytes it was published with. A YAML referenced by ``lab_artifact_uri`` is copied there
too: the referenced object could change later, a published version must not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from domain.context import CommandContext
from domain.definition import DefinitionSpec, DefinitionVersion, LabletDefinition
from domain.errors import DomainError, InvalidInput, NotFound
from domain.lab_yaml import MAX_LAB_YAML_BYTES, analyse
from domain.naming import validate_name
from processors.commands import AggregateStore
from processors.ports.artifacts import ArtifactError, ArtifactNotFound, InvalidArtifactKey, lab_yaml_key
from processors.retry import retry_on_conflict


class LabYamlStore(Protocol):
    """The synchronous artifact store calls used here (``BlockingArtifactStore`` has them)."""

    def put_lab_yaml(self, definition_name: str, sha256: str, text: str) -> str: ...

    def get(self, uri_or_key: str) -> bytes: ...

    def uri_for(self, key: str) -> str: ...


class LabYamlTooLarge(InvalidInput):
    status = 413
    title = "Payload too large"


class ArtifactStoreUnavailable(DomainError):
    status = 503
    title = "Artifact store unavailable"


@dataclass(frozen=True)
class Published:
    version: DefinitionVersion
    position: int
    created: bool  # False: the same content was already the latest version (no event)


class DefinitionService:
    def __init__(self, store: AggregateStore, artifacts: LabYamlStore) -> None:
        self.store = store
        self.artifacts = artifacts

    # -- reads that need the authoritative stream ---------------------------------------
    def get(self, name: str) -> LabletDefinition:
        try:
            validate_name(name)
        except InvalidInput:
            raise NotFound(f"definition {name!r} not found") from None
        try:
            definition = self.store.get(LabletDefinition.stream_id_for(name))
        except NotFound:
            raise NotFound(f"definition {name!r} not found") from None
        if not isinstance(definition, LabletDefinition):
            raise NotFound(f"definition {name!r} not found")
        return definition

    def lab_yaml(self, name: str, version: str) -> str:
        """The lab YAML text a published version pins."""
        definition = self.get(name)
        published = definition.versions.get(version)
        if published is None:
            raise NotFound(f"definition {name!r} has no version {version!r}")
        try:
            return self.artifacts.get(published.lab_yaml_uri).decode("utf-8")
        except ArtifactError as error:  # the version exists, so its bytes must: an outage
            raise ArtifactStoreUnavailable(f"reading {published.lab_yaml_uri!r}: {error.detail}") from error

    # -- commands ----------------------------------------------------------------------------
    def publish(
        self,
        fields: Mapping[str, Any],
        ctx: CommandContext,
        *,
        lab_yaml: str | None = None,
        lab_artifact_uri: str | None = None,
    ) -> Published:
        """Publish a version from ``fields`` (SPEC §3.2 fields, ``name``, optional ``version``)
        and a lab YAML given as text or as an artifact URI (exactly one)."""
        if (lab_yaml is None) == (lab_artifact_uri is None):
            raise InvalidInput("lab_yaml", "give exactly one of lab_yaml (the text) or lab_artifact_uri")
        if "lab_yaml_uri" in fields:
            raise InvalidInput("lab_yaml_uri", "is set by the server; send lab_yaml or lab_artifact_uri")
        name = validate_name(fields.get("name"))
        text = lab_yaml if lab_yaml is not None else self._fetch(lab_artifact_uri or "")
        source = "lab_yaml" if lab_yaml is not None else "lab_artifact_uri"
        data = text.encode("utf-8")
        if len(data) > MAX_LAB_YAML_BYTES:
            raise LabYamlTooLarge(source, f"is {len(data)} bytes; the limit is {MAX_LAB_YAML_BYTES} (1 MiB)")
        analysis = analyse(text)
        sha256 = hashlib.sha256(data).hexdigest()
        uri = self.artifacts.uri_for(lab_yaml_key(name, sha256))
        spec = DefinitionSpec.from_dict({**fields, "lab_yaml_uri": uri})

        def attempt() -> Published:
            stream = LabletDefinition.stream_id_for(name)
            if self.store.exists(stream):
                definition: LabletDefinition = self.store.get(stream)
                published = definition.publish(spec, sha256, analysis, ctx)
            else:
                definition = LabletDefinition.create(spec, sha256, analysis, ctx)
                published = definition.latest
                assert published is not None
            if not definition.pending_events:
                return Published(published, self.store.max_position(), created=False)
            # The bytes first: a version must never point at an artifact that is not there.
            self._store_lab_yaml(name, sha256, text)
            return Published(published, self.store.save(definition), created=True)

        return retry_on_conflict(attempt)

    def deprecate(self, name: str, ctx: CommandContext, *, reason: str = "") -> int:
        def attempt() -> int:
            definition = self.get(name)
            definition.deprecate(ctx, reason=reason)
            return self.store.save(definition)

        return retry_on_conflict(attempt)

    # -- artifacts ------------------------------------------------------------------------------
    def _fetch(self, uri: str) -> str:
        data = self._read_artifact(uri, "lab_artifact_uri")
        if len(data) > MAX_LAB_YAML_BYTES:
            raise LabYamlTooLarge(
                "lab_artifact_uri", f"is {len(data)} bytes; the limit is {MAX_LAB_YAML_BYTES} (1 MiB)"
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("lab_artifact_uri", "is not UTF-8 text") from None

    def _read_artifact(self, uri: str, field: str) -> bytes:
        try:
            return self.artifacts.get(uri)
        except ArtifactNotFound:
            raise InvalidInput(field, f"no artifact at {uri!r}") from None
        except InvalidArtifactKey as error:
            raise InvalidInput(field, error.detail) from None
        except ArtifactError as error:
            raise ArtifactStoreUnavailable(f"reading {uri!r}: {error.detail}") from error

    def _store_lab_yaml(self, name: str, sha256: str, text: str) -> str:
        try:
            return self.artifacts.put_lab_yaml(name, sha256, text)
        except ArtifactError as error:
            raise ArtifactStoreUnavailable(f"storing the lab YAML of {name!r}: {error.detail}") from error
