"""The lab YAML an instance will import: its definition version's YAML with its ports.

Rewriting (``domain.lab_yaml.rewrite_ports``) parses the document twice (locate, then
verify), which is slow for big labs (about a second for a 40-node lab), and an exam wave
instantiates hundreds of instances of one definition at once. So per
``lab_yaml_sha256`` the domain rewrite runs once, with *sentinel* ports (5-digit numbers
that occur nowhere in the text); every instance then gets that verified result with the
sentinels replaced by its own ports. That is the same text the domain would produce:
both are digit strings of 4-5 digits in the same scalars, so YAML reads them alike and
the domain's quoting choices are the same (the sentinel must occur exactly as often as
the domain reported replacements, else the slow path runs). A lab without placeholders
is not copied: its definition's artifact is used as is.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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
        self._templates: dict[tuple[str, tuple[str, ...]], _Template | None] = {}

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
        rewritten = self.rewrite(version.lab_yaml_sha256, text, dict(instance.allocated_ports))
        return self.artifacts.put(instance_lab_yaml_key(instance.id), rewritten.encode("utf-8"),
                                  LAB_YAML_CONTENT_TYPE)

    def rewrite(self, sha256: str, text: str, ports: dict[str, int]) -> str:
        """``rewrite_ports(text, ports).text``, from a per-definition template when possible."""
        if not all(1000 <= port <= 99999 for port in ports.values()):
            return rewrite_ports(text, ports).text
        key = (sha256, tuple(sorted(name.lower() for name in ports)))
        if key not in self._templates:
            self._templates[key] = _sentinel_template(text, sorted(ports, key=str.lower))
        template = self._templates[key]
        if template is None:
            return rewrite_ports(text, ports).text
        by_name = {name.lower(): port for name, port in ports.items()}
        return template.pattern.sub(lambda m: str(by_name[template.names[m.group(0)]]), template.text)

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



@dataclass(frozen=True)
class _Template:
    text: str  # the domain's rewrite with sentinel ports
    pattern: re.Pattern[str]  # any sentinel
    names: dict[str, str]  # sentinel -> port name (lower case)


def _sentinel_template(text: str, names: list[str]) -> _Template | None:
    """Rewrite once with sentinel ports; None when the sentinels cannot be trusted."""
    sentinels: dict[str, int] = {}
    candidate = 59999
    for name in names:
        while str(candidate) in text:
            candidate -= 1
        sentinels[name] = candidate
        candidate -= 1
    result = rewrite_ports(text, sentinels)
    counts: dict[int, int] = {}
    for replacement in result.replacements:
        counts[replacement.port] = counts.get(replacement.port, 0) + 1
    if any(result.text.count(str(port)) != counts.get(port, 0) for port in sentinels.values()):
        return None
    if not sentinels:
        return None
    by_sentinel = {str(port): name.lower() for name, port in sentinels.items()}
    pattern = re.compile("|".join(re.escape(sentinel) for sentinel in by_sentinel))
    return _Template(result.text, pattern, by_sentinel)
