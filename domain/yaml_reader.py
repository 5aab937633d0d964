"""A YAML reader for untrusted text: bounded nesting and size, only the standard tags.

ruamel.yaml itself has neither bound. Its scanner re-checks every open flow level for each
token, so 50 000 nested ``[`` cost seconds before the composer, which recurses once per
level, ends in ``RecursionError`` (a 500 after 3 s). And it keeps any tag it is given:
``!!python/object/apply:os.system`` was stored as part of a lab and would be handed to
whatever loads it next. Here the scanner refuses the level past ``MAX_DEPTH`` (flow
brackets and block indentation alike) and the token past ``MAX_TOKENS`` as it reaches
them, and the composed document may carry only the YAML core schema's tags.

Pure: parses text, no I/O.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.scanner import RoundTripScanner

MAX_DEPTH = 64  # a CML lab is 4-5 levels deep; configs are block scalars (one token)
MAX_TOKENS = 100_000  # ~100 per node with its interfaces: a 500-node lab is ~50 000
ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")
)


class YamlLimitError(MarkedYAMLError):
    """The document is nested too deep or is too long (a YAMLError, with its position)."""


class _BoundedScanner(RoundTripScanner):
    def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:  # noqa: N803 - ruamel's name
        self._check_depth()
        super().fetch_flow_collection_start(TokenClass, to_push)

    def add_indent(self, column: int) -> bool:
        added = super().add_indent(column)
        if added:
            self._check_depth()
        return added

    def fetch_more_tokens(self) -> Any:
        self._fetched = getattr(self, "_fetched", 0) + 1
        if self._fetched > MAX_TOKENS:
            raise YamlLimitError(None, None, f"more than {MAX_TOKENS} tokens", self.reader.get_mark())
        return super().fetch_more_tokens()

    def _check_depth(self) -> None:
        if self.flow_level + len(self.indents) > MAX_DEPTH:
            raise YamlLimitError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.reader.get_mark())


def compose(text: str) -> Node | None:
    """The document's node graph (nothing constructed), or ``YAMLError`` explaining why not."""
    yaml = YAML(typ="rt", pure=True)  # a fresh instance per call: ruamel keeps parser state
    yaml.Scanner = _BoundedScanner
    root = yaml.compose(text)
    if root is not None:
        _check_tags(root)
    return root


def _check_tags(root: Node) -> None:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: the same node again
            continue
        seen.add(id(node))
        tag = str(node.tag)
        if tag not in ALLOWED_TAGS:
            raise YamlLimitError(None, None, f"tag {tag!r} is not allowed (only the YAML core schema's)",
                                 node.start_mark)
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


__all__ = ["MAX_DEPTH", "MAX_TOKENS", "YAMLError", "YamlLimitError", "compose"]
