"""Reading a CML lab topology (the YAML given to ``POST import``) the way CML validates it.

Only what the simulated CML and the fake server need: node labels, definitions,
interfaces, links and any stored configuration. Violations raise ``TopologyInvalid`` with
a message in CML's style; the callers turn it into a 400.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

try:  # libyaml's C parser, when present, reads a lab ~10x faster than pure-Python ruamel.yaml
    import yaml as _pyyaml

    _FAST_LOADER: Any = getattr(_pyyaml, "CSafeLoader", None)
except ImportError:  # pragma: no cover - depends on the environment
    _pyyaml, _FAST_LOADER = None, None

TOP_LEVEL_KEYS = frozenset({"lab", "nodes", "links", "annotations", "smart_annotations"})
INTERFACE_TYPES = frozenset({"physical", "loopback"})
# Node definitions that have no serial console (so no configuration to extract from one).
WITHOUT_CONFIG_EXTRACTION = frozenset({"unmanaged_switch", "external_connector"})


class TopologyInvalid(ValueError):
    pass


@dataclass(frozen=True)
class InterfaceSpec:
    local_id: str
    label: str
    type: str
    slot: int | None


@dataclass(frozen=True)
class NodeSpec:
    local_id: str
    label: str
    node_definition: str
    interfaces: tuple[InterfaceSpec, ...]
    configuration: str  # "" when the topology stores none
    x: int = 0
    y: int = 0
    tags: tuple[str, ...] = ()

    @property
    def has_config_extraction(self) -> bool:
        return self.node_definition not in WITHOUT_CONFIG_EXTRACTION

    @property
    def has_console(self) -> bool:
        return self.node_definition not in WITHOUT_CONFIG_EXTRACTION  # the same nodes lack a console


@dataclass(frozen=True)
class LinkSpec:
    local_id: str
    n1: str
    i1: str
    n2: str
    i2: str


@dataclass(frozen=True)
class Topology:
    title: str
    nodes: tuple[NodeSpec, ...]
    links: tuple[LinkSpec, ...]
    description: str = ""
    notes: str = ""


def parse_topology(text: str, title: str | None = None) -> Topology:
    """Parse and validate import text; ``title`` overrides ``lab.title`` like ``?title=``."""
    topology = _parse(text)
    if title:
        topology = replace(topology, title=title)
    if len(topology.title) > 64 or "\n" in topology.title:
        raise TopologyInvalid("lab.title must be one line of at most 64 characters")
    return topology


@lru_cache(maxsize=512)
def _parse(text: str) -> Topology:
    # Cached: a simulation imports the same few definitions thousands of times, and a
    # Topology is immutable, so sharing one is safe.
    document = _load_yaml(text)
    if not isinstance(document, dict):
        raise TopologyInvalid("Topology must be a mapping")
    extra = set(document) - TOP_LEVEL_KEYS
    if extra:
        raise TopologyInvalid(f"Extra inputs are not permitted: {sorted(extra)}")
    for key in ("lab", "nodes", "links"):
        if key not in document:
            raise TopologyInvalid(f"Field required: {key}")
    lab = _mapping(document["lab"], "lab")
    if not lab.get("version"):
        raise TopologyInvalid("Field required: lab.version")
    nodes = tuple(_node(raw, index) for index, raw in enumerate(_list(document["nodes"], "nodes")))
    _unique([node.local_id for node in nodes], "node id")
    _unique([node.label for node in nodes], "node label")
    links = tuple(_link(raw, index) for index, raw in enumerate(_list(document["links"], "links")))
    _check_link_ends(nodes, links)
    return Topology(
        title=str(lab.get("title") or ""), nodes=nodes, links=links,
        description=str(lab.get("description") or ""), notes=str(lab.get("notes") or ""),
    )


def _load_yaml(text: str) -> Any:
    try:
        if _FAST_LOADER is not None:
            return _pyyaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 - a safe loader
        return YAML(typ="safe").load(text)
    except (YAMLError, ValueError) as error:
        raise TopologyInvalid(f"Invalid YAML: {error}") from error
    except Exception as error:
        if _pyyaml is not None and isinstance(error, _pyyaml.YAMLError):
            raise TopologyInvalid(f"Invalid YAML: {error}") from error
        raise


def _node(raw: Any, index: int) -> NodeSpec:
    node = _mapping(raw, f"nodes[{index}]")
    for key in ("id", "node_definition"):
        if not node.get(key):
            raise TopologyInvalid(f"Field required: nodes[{index}].{key}")
    interfaces = tuple(
        _interface(item, f"nodes[{index}].interfaces[{position}]")
        for position, item in enumerate(_list(node.get("interfaces") or [], f"nodes[{index}].interfaces"))
    )
    _unique([interface.local_id for interface in interfaces], f"interface id of nodes[{index}]")
    return NodeSpec(
        local_id=str(node["id"]),
        label=str(node.get("label") or node["id"]),
        node_definition=str(node["node_definition"]),
        interfaces=interfaces,
        configuration=_configuration_text(node.get("configuration")),
        x=_coordinate(node.get("x"), f"nodes[{index}].x"),
        y=_coordinate(node.get("y"), f"nodes[{index}].y"),
        tags=tuple(str(tag) for tag in _list(node.get("tags") or [], f"nodes[{index}].tags")),
    )


def _coordinate(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > 15000:
        raise TopologyInvalid(f"{where} must be a number between -15000 and 15000")
    return int(value)


def _interface(raw: Any, where: str) -> InterfaceSpec:
    interface = _mapping(raw, where)
    if not interface.get("id"):
        raise TopologyInvalid(f"Field required: {where}.id")
    if interface.get("type") not in INTERFACE_TYPES:
        raise TopologyInvalid(f"{where}.type must be one of {sorted(INTERFACE_TYPES)}")
    slot = interface.get("slot")
    return InterfaceSpec(
        local_id=str(interface["id"]),
        label=str(interface.get("label") or interface["id"]),
        type=str(interface["type"]),
        slot=int(slot) if slot is not None else None,
    )


def _link(raw: Any, index: int) -> LinkSpec:
    link = _mapping(raw, f"links[{index}]")
    for key in ("id", "n1", "n2", "i1", "i2"):
        if not link.get(key):
            raise TopologyInvalid(f"Field required: links[{index}].{key}")
    return LinkSpec(*(str(link[key]) for key in ("id", "n1", "i1", "n2", "i2")))


def _check_link_ends(nodes: tuple[NodeSpec, ...], links: tuple[LinkSpec, ...]) -> None:
    interfaces_of = {node.local_id: {i.local_id for i in node.interfaces} for node in nodes}
    for link in links:
        for node_id, interface_id in ((link.n1, link.i1), (link.n2, link.i2)):
            if node_id not in interfaces_of:
                raise TopologyInvalid(f"Link {link.local_id}: node {node_id} does not exist")
            if interface_id not in interfaces_of[node_id]:
                raise TopologyInvalid(f"Link {link.local_id}: interface {interface_id} is not on node {node_id}")


def main_configuration(files: list[Any]) -> str:
    """The text of a node's ``Main`` configuration file (else its first), from CML's list form."""
    named = [item for item in files if isinstance(item, dict)]
    main = [item for item in named if item.get("name") == "Main"] or named[:1]
    return str(main[0].get("content") or "") if main else ""


def _configuration_text(configuration: Any) -> str:
    """A node's configuration is a string, or a list of ``{name, content}`` files (CML ≥ 2.7)."""
    if configuration is None:
        return ""
    if isinstance(configuration, str):
        return configuration
    if isinstance(configuration, list):
        return main_configuration(configuration)
    raise TopologyInvalid("configuration must be a string or a list of {name, content}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TopologyInvalid(f"{where} must be a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TopologyInvalid(f"{where} must be a list")
    return value


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise TopologyInvalid(f"Duplicate {what}: {value}")
        seen.add(value)
