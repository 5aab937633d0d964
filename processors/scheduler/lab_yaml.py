"""The lab YAML an instance will import: its definition version's YAML with its ports.

Rewriting (``domain.lab_yaml.rewrite_ports``) parses the document, which is slow for big
labs (about a second for a 40-node lab), and an exam wave instantiates hundreds of
instances of one definition at once. So per ``lab_yaml_sha256`` the text and whether it
has placeholders at all are kept; a lab without placeholders is not copied (its
definition's artifact is used as is).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

from domain.definition import DefinitionVersion, LabletDefinition
from domain.errors import NotFound
from domain.instance import LabletInstance
from domain.lab_yaml import analyse, rewrite_ports

LAB_YAML_CONTENT_TYPE = "application/yaml"


class LabYamlArtifacts(Protocol):
    """The synchronous artifact store calls used here (``BlockingArtifactStore`` has them)."""

    def get(self, uri_or_key: str) -> bytes: ...

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...


def instance_lab_yaml_key(instance_id: str) -> str:
    return f"instances/{quote(instance_id, safe='-_.~')}/lab.yaml"


class InstanceLabYaml:
    def __init__(self, artifacts: LabYamlArtifacts, load: Callable[[str], Any], *, cache_size: int = 64) -> None:
        self.artifacts = artifacts
        self.load = load
        self.cache_size = cache_size
        self._texts: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # sha -> (text, has placeholders)
        self._versions: dict[tuple[str, str], DefinitionVersion] = {}

    def version_of(self, instance: LabletInstance) -> DefinitionVersion:
        key = (instance.definition_name, instance.definition_version)
        version = self._versions.get(key)
        if version is None:
            definition = self.load(LabletDefinition.stream_id_for(instance.definition_name))
            version = definition.versions.get(instance.definition_version)
            if version is None:
                raise NotFound(f"definition {key[0]!r} has no version {key[1]!r}")
            self._versions[key] = version  # published versions are immutable
        return version

    def prepare(self, instance: LabletInstance) -> str:
        """Store the instance's rewritten lab YAML; its URI."""
        version = self.version_of(instance)
        text, has_placeholders = self._text(version)
        if not has_placeholders:
            return version.lab_yaml_uri
        rewritten = rewrite_ports(text, dict(instance.allocated_ports)).text
        return self.artifacts.put(instance_lab_yaml_key(instance.id), rewritten.encode("utf-8"),
                                  LAB_YAML_CONTENT_TYPE)

    def _text(self, version: DefinitionVersion) -> tuple[str, bool]:
        cached = self._texts.get(version.lab_yaml_sha256)
        if cached is not None:
            self._texts.move_to_end(version.lab_yaml_sha256)
            return cached
        text = self.artifacts.get(version.lab_yaml_uri).decode("utf-8")
        entry = (text, bool(analyse(text).placeholders))
        self._texts[version.lab_yaml_sha256] = entry
        if len(self._texts) > self.cache_size:
            self._texts.popitem(last=False)
        return entry
