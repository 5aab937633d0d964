"""CML 2.x lab YAML: validate a topology, find its port placeholders, rewrite them.

Placeholders ``${PORT_<NAME>}`` or ``${<NAME>}`` may appear in three places only:
``smart_annotations[].tag``, ``smart_annotations[].label`` and ``nodes[].tags[]``
(SPEC §4). Their names are normalised to lower case without the ``PORT_`` prefix, so
``${PORT_SERIAL_1}`` and ``${SERIAL_1}`` both name the port ``serial_1`` of the
definition's port template.

Why rewriting is textual: a ruamel.yaml round-trip (load + dump) re-indents sequences,
re-flows long lines and normalises spacing, so the lab a user uploaded would not be
the lab CML receives. Instead the document is *composed* (parsed to nodes that carry
their source positions, nothing constructed), the placeholder scalars are located,
and only their source spans are edited. Every other byte is kept. The result is
parsed again and each edited scalar must read back as the expected string; a plain
scalar that would turn into a number (``tag: ${PORT_X}`` → ``tag: 2001``) is written
double-quoted instead, since CML wants strings there.

Pure domain code: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from domain import yaml_reader
from domain.errors import InvalidInput

MAX_LAB_YAML_BYTES = 1024 * 1024

# Schema versions CML 2.x imports (older ones are upgraded on import).
LAB_SCHEMA_VERSIONS = frozenset(
    {"0.0.1", "0.0.2", "0.0.3", "0.0.4", "0.0.5", "0.1.0", "0.2.0", "0.2.1", "0.2.2", "0.3.0", "0.3.1"}
)
TOP_LEVEL_KEYS = ("lab", "nodes", "links", "annotations", "smart_annotations")
INTERFACE_TYPES = frozenset({"physical", "loopback"})
ANNOTATION_TYPES = frozenset({"text", "rectangle", "ellipse", "line"})

PLACEHOLDER = re.compile(r"\$\{(?:PORT_)?([A-Za-z][A-Za-z0-9_]*)\}")
PORT_PREFIXED = re.compile(r"\$\{PORT_[A-Za-z0-9_]*\}")

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FIELD = "lab_yaml"


def placeholder_name(placeholder: str) -> str:
    """``${PORT_SERIAL_1}`` → ``serial_1``; raises ``InvalidInput`` if it is not a placeholder."""
    match = PLACEHOLDER.fullmatch(placeholder)
    if match is None:
        raise InvalidInput("placeholder", f"not a port placeholder: {placeholder!r}")
    return match.group(1).lower()


@dataclass(frozen=True)
class LabAnalysis:
    title: str
    node_count: int
    placeholders: frozenset[str]
    lab_version: str
    link_count: int = 0
    node_definitions: frozenset[str] = frozenset()
    # ``${NAME}`` found where it cannot be rewritten (e.g. a shell variable in a
    # node configuration): legitimate text, so only reported.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replacement:
    path: str
    placeholder: str
    port: int


@dataclass(frozen=True)
class RewriteResult:
    text: str
    replacements: list[Replacement] = field(default_factory=list)


def analyse(lab_yaml: str) -> LabAnalysis:
    """Validate a CML lab YAML and list the port placeholders it uses."""
    analysis, _ = _analyse(lab_yaml)
    return analysis


def rewrite_ports(lab_yaml: str, ports: dict[str, int]) -> RewriteResult:
    """Replace every placeholder by its allocated port, leaving all other bytes as they were."""
    by_name = _normalise_ports(ports)
    _, rewritable = _analyse(lab_yaml)

    replacements: list[Replacement] = []
    expected: dict[str, str] = {}  # path → value after the rewrite
    edited: dict[int, ScalarNode] = {}  # an aliased scalar is one source span: edit it once
    for path, node in rewritable.items():
        for match in PLACEHOLDER.finditer(node.value):
            name = match.group(1).lower()
            if name not in by_name:
                raise InvalidInput("ports", f"unresolved placeholder {match.group(0)} at {path}")
            replacements.append(Replacement(path, match.group(0), by_name[name]))
        if PLACEHOLDER.search(node.value):
            expected[path] = _substitute(node.value, by_name)
            edited[id(node)] = node
    if not edited:
        return RewriteResult(lab_yaml, replacements)

    quoted = {
        key for key, node in edited.items() if node.style is None and not _reads_as_string(_substitute(node.value, by_name))
    }
    text = _apply_edits(lab_yaml, edited, by_name, quoted)
    misread = _misread(text, expected)
    if misread:
        # In-place edits did not read back as intended (e.g. escapes in a
        # double-quoted scalar): write those scalars whole, double-quoted.
        quoted |= {id(rewritable[path]) for path in misread}
        text = _apply_edits(lab_yaml, edited, by_name, quoted)
        misread = _misread(text, expected)
        if misread:
            raise InvalidInput(_FIELD, f"cannot rewrite placeholders in place at {', '.join(sorted(misread))}")
    return RewriteResult(text, replacements)


def _reads_as_string(plain: str) -> bool:
    """Would this plain scalar still be a string, under YAML 1.2 and under 1.1?

    CML's importer may read YAML 1.1 (where ``2000_2001`` or ``20:30`` are integers),
    so a rewritten plain scalar is left unquoted only if both read it as text.
    """
    return all(
        VersionedResolver(version=version).resolve(ScalarNode, plain, (True, False)) == _STR
        for version in ((1, 2), (1, 1))
    )


def _substitute(value: str, by_name: dict[str, int]) -> str:
    return PLACEHOLDER.sub(lambda m: str(by_name.get(m.group(1).lower(), m.group(0))), value)


def _normalise_ports(ports: dict[str, int]) -> dict[str, int]:
    if not isinstance(ports, dict):
        raise InvalidInput("ports", f"must be a mapping of name to port, got {type(ports).__name__}")
    by_name: dict[str, int] = {}
    for name, port in ports.items():
        if not isinstance(name, str) or not name:
            raise InvalidInput("ports", f"port names must be non-empty strings, got {name!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidInput("ports", f"{name}: not a TCP port: {port!r}")
        key = name.lower()
        if key in by_name:
            raise InvalidInput("ports", f"{name}: given twice (names are case-insensitive)")
        by_name[key] = port
    return by_name


def _apply_edits(source: str, edited: dict[int, ScalarNode], by_name: dict[str, int], quoted: set[int]) -> str:
    edits = []
    for key, node in edited.items():
        start, end = node.start_mark.index, node.end_mark.index
        if key in quoted and node.style not in ("|", ">"):
            # JSON string syntax is valid YAML double-quoted scalar syntax.
            replacement = json.dumps(_substitute(node.value, by_name), ensure_ascii=False)
        else:
            # Placeholders contain no spaces, quotes or backslashes, so in plain,
            # single-quoted and block scalars they are written literally.
            replacement = _substitute(source[start:end], by_name)
        edits.append((start, end, replacement))
    pieces = []
    cursor = 0
    for start, end, replacement in sorted(edits):
        pieces.append(source[cursor:start])
        pieces.append(replacement)
        cursor = end
    pieces.append(source[cursor:])
    return "".join(pieces)


def _misread(text: str, expected: dict[str, str]) -> set[str]:
    """Paths whose rewritten scalar does not read back as the expected string."""
    try:
        _, rewritable = _analyse(text)
    except InvalidInput:
        return set(expected)
    return {
        path
        for path, value in expected.items()
        if path not in rewritable or rewritable[path].value != value or rewritable[path].tag != _STR
    }


# -- parsing and validation --------------------------------------------------------


def _compose(lab_yaml: str) -> Node:
    if not isinstance(lab_yaml, str):
        raise InvalidInput(_FIELD, f"must be text, got {type(lab_yaml).__name__}")
    size = len(lab_yaml.encode("utf-8", errors="surrogatepass"))
    if size > MAX_LAB_YAML_BYTES:
        raise InvalidInput(_FIELD, f"is {size} bytes, more than the 1 MiB limit")
    try:
        root = yaml_reader.compose(lab_yaml)  # bounded depth and length, core-schema tags only
    except YAMLError as error:
        raise InvalidInput(_FIELD, f"not valid YAML: {_one_line(str(error))}") from error
    if root is None:
        raise InvalidInput(_FIELD, "is empty")
    return root


def _analyse(lab_yaml: str) -> tuple[LabAnalysis, dict[str, ScalarNode]]:
    """Validate, and return the scalars where placeholders may be rewritten, by path."""
    root = _compose(lab_yaml)
    top = _mapping(root, "top level")
    unknown = [key for key in top if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise InvalidInput(_FIELD, f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    for key in ("lab", "nodes", "links"):
        if key not in top:
            raise InvalidInput(_FIELD, f"missing top-level key '{key}'")

    lab = _mapping(top["lab"], "lab")
    if "version" not in lab:
        raise InvalidInput(_FIELD, "lab.version is required")
    version = _string(lab["version"], "lab.version")
    if version not in LAB_SCHEMA_VERSIONS:
        raise InvalidInput(_FIELD, f"lab.version {version!r} is not a CML 2.x schema version")
    title = ""
    if "title" in lab:
        title = _string(lab["title"], "lab.title")
        if not 1 <= len(title) <= 64 or "\n" in title:
            raise InvalidInput(_FIELD, "lab.title must be one line of 1-64 characters")
    for key in ("description", "notes"):
        if key in lab:
            _string(lab[key], f"lab.{key}")

    rewritable: dict[str, ScalarNode] = {}
    interfaces_of: dict[str, set[str]] = {}
    definitions: set[str] = set()
    for i, node in enumerate(_sequence(top["nodes"], "nodes")):
        path = f"nodes[{i}]"
        fields = _mapping(node, path)
        for key in ("id", "node_definition"):
            if key not in fields:
                raise InvalidInput(_FIELD, f"{path}.{key} is required")
        node_id = _string(fields["id"], f"{path}.id")
        if not 1 <= len(node_id) <= 64:
            raise InvalidInput(_FIELD, f"{path}.id must have 1-64 characters")
        if node_id in interfaces_of:
            raise InvalidInput(_FIELD, f"{path}.id {node_id!r} is used by another node")
        definitions.add(_string(fields["node_definition"], f"{path}.node_definition"))
        if "label" in fields:
            _string(fields["label"], f"{path}.label")
        for key in ("x", "y"):
            if key in fields and not -15000 <= _integer(fields[key], f"{path}.{key}") <= 15000:
                raise InvalidInput(_FIELD, f"{path}.{key} must be within -15000..15000")
        interface_ids: set[str] = set()
        if "interfaces" in fields:
            for j, interface in enumerate(_sequence(fields["interfaces"], f"{path}.interfaces")):
                ipath = f"{path}.interfaces[{j}]"
                ifields = _mapping(interface, ipath)
                for key in ("id", "type"):
                    if key not in ifields:
                        raise InvalidInput(_FIELD, f"{ipath}.{key} is required")
                interface_id = _string(ifields["id"], f"{ipath}.id")
                if interface_id in interface_ids:
                    raise InvalidInput(_FIELD, f"{ipath}.id {interface_id!r} is used twice in node {node_id!r}")
                interface_ids.add(interface_id)
                kind = _string(ifields["type"], f"{ipath}.type")
                if kind not in INTERFACE_TYPES:
                    raise InvalidInput(_FIELD, f"{ipath}.type must be physical or loopback, got {kind!r}")
        interfaces_of[node_id] = interface_ids
        if "tags" in fields:
            for j, tag in enumerate(_sequence(fields["tags"], f"{path}.tags")):
                tpath = f"{path}.tags[{j}]"
                _string(tag, tpath)
                rewritable[tpath] = tag

    links = _sequence(top["links"], "links")
    link_ids: set[str] = set()
    for i, link in enumerate(links):
        path = f"links[{i}]"
        fields = _mapping(link, path)
        values = {}
        for key in ("id", "n1", "n2", "i1", "i2"):
            if key not in fields:
                raise InvalidInput(_FIELD, f"{path}.{key} is required")
            values[key] = _string(fields[key], f"{path}.{key}")
        if values["id"] in link_ids:
            raise InvalidInput(_FIELD, f"{path}.id {values['id']!r} is used by another link")
        link_ids.add(values["id"])
        for n, i_ in (("n1", "i1"), ("n2", "i2")):
            if values[n] not in interfaces_of:
                raise InvalidInput(_FIELD, f"{path}.{n} refers to unknown node {values[n]!r}")
            if values[i_] not in interfaces_of[values[n]]:
                raise InvalidInput(
                    _FIELD, f"{path}.{i_} refers to {values[i_]!r}, not an interface of node {values[n]!r}"
                )

    if "annotations" in top:
        for i, annotation in enumerate(_sequence(top["annotations"], "annotations")):
            path = f"annotations[{i}]"
            fields = _mapping(annotation, path)
            if "type" not in fields:
                raise InvalidInput(_FIELD, f"{path}.type is required")
            kind = _string(fields["type"], f"{path}.type")
            if kind not in ANNOTATION_TYPES:
                raise InvalidInput(_FIELD, f"{path}.type must be one of {', '.join(sorted(ANNOTATION_TYPES))}")

    if "smart_annotations" in top:
        for i, annotation in enumerate(_sequence(top["smart_annotations"], "smart_annotations")):
            path = f"smart_annotations[{i}]"
            fields = _mapping(annotation, path)
            if "tag" not in fields:
                raise InvalidInput(_FIELD, f"{path}.tag is required")
            for key in ("tag", "label"):
                if key in fields:
                    _string(fields[key], f"{path}.{key}")
                    rewritable[f"{path}.{key}"] = fields[key]

    placeholders = frozenset(
        match.group(1).lower() for node in rewritable.values() for match in PLACEHOLDER.finditer(node.value)
    )
    rewritable_ids = {id(node) for node in rewritable.values()}
    warnings = []
    for path, scalar in _scalars(root, ""):
        if id(scalar) in rewritable_ids or "${" not in scalar.value:
            continue
        prefixed = PORT_PREFIXED.search(scalar.value)
        if prefixed:
            raise InvalidInput(
                _FIELD,
                f"placeholder {prefixed.group(0)} at {path or 'top level'} cannot be rewritten: port placeholders "
                "belong in smart_annotations[].tag, smart_annotations[].label or nodes[].tags[]",
            )
        for match in PLACEHOLDER.finditer(scalar.value):
            warnings.append(f"{match.group(0)} at {path} is left as is (not a place where ports are rewritten)")

    analysis = LabAnalysis(
        title=title,
        node_count=len(interfaces_of),
        placeholders=placeholders,
        lab_version=version,
        link_count=len(links),
        node_definitions=frozenset(definitions),
        warnings=tuple(warnings),
    )
    return analysis, rewritable


def _where(node: Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _mapping(node: Node, path: str) -> dict[str, Node]:
    if not isinstance(node, MappingNode):
        raise InvalidInput(_FIELD, f"{path} must be a mapping ({_where(node)})")
    fields: dict[str, Node] = {}
    for key, value in node.value:
        if key.tag == "tag:yaml.org,2002:merge":
            raise InvalidInput(_FIELD, f"{path}: merge keys (<<) are not supported ({_where(key)})")
        if not isinstance(key, ScalarNode) or key.tag != _STR:
            raise InvalidInput(_FIELD, f"{path}: keys must be strings ({_where(key)})")
        if key.value in fields:
            raise InvalidInput(_FIELD, f"{path}: duplicate key {key.value!r} ({_where(key)})")
        fields[key.value] = value
    return fields


def _sequence(node: Node, path: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise InvalidInput(_FIELD, f"{path} must be a list ({_where(node)})")
    return list(node.value)


def _string(node: Node, path: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag != _STR:
        raise InvalidInput(_FIELD, f"{path} must be a string ({_where(node)})")
    return str(node.value)


def _integer(node: Node, path: str) -> int:
    if not isinstance(node, ScalarNode) or node.tag != _INT:
        raise InvalidInput(_FIELD, f"{path} must be an integer ({_where(node)})")
    digits = node.value.replace("_", "")
    try:
        return int(digits, 0)
    except ValueError:  # YAML 1.2 reads "010" as decimal ten; int(_, 0) refuses it
        return int(digits, 10)


def _scalars(node: Node, path: str) -> Iterator[tuple[str, ScalarNode]]:
    """Every scalar of the document (keys included), with its path; aliases once."""
    seen: set[int] = set()
    stack: list[tuple[str, Node]] = [(path, node)]
    while stack:
        here, current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ScalarNode):
            yield here, current
        elif isinstance(current, SequenceNode):
            stack.extend((f"{here}[{i}]", item) for i, item in reversed(list(enumerate(current.value))))
        elif isinstance(current, MappingNode):
            for key, value in reversed(current.value):
                name = key.value if isinstance(key, ScalarNode) else "?"
                stack.append((f"{here}.{name}" if here else str(name), value))
                stack.append((here or "top level", key))


def _one_line(message: str) -> str:
    return " ".join(message.split())
