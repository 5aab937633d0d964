"""What text the system stores: no control characters, no lone surrogates.

Every string that reaches an event is later written to a read model, a log line, a
webhook and a dashboard. PostgreSQL refuses NUL in text (one such event used to stop
every projection), a lone surrogate cannot be encoded as UTF-8, and terminal control
characters forge log lines. So text is refused at the edge, naming the first offending
character: identifiers and names may hold none of them; free text that is naturally
multi-line (a lab YAML, a description, a grading report) may hold tab, LF and CR only.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from domain.errors import InvalidInput

# C0 and C1 controls, DEL, and the surrogate block (lone halves: not encodable as UTF-8).
_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_JSON_DEPTH = 32  # deeper than any document this system reads (CloudEvent data, reports)


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` may not be stored (the first bad character and where), or None."""
    match = (_MULTILINE if multiline else _ONE_LINE).search(value)
    if match is None:
        return None
    char = match.group(0)
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {kind} (U+{ord(char):04X}) at index {match.start()}"


def check_text(field: str, value: str, *, multiline: bool = False) -> str:
    """``value`` itself, or ``InvalidInput`` naming the field and the character."""
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise InvalidInput(field, problem)
    return value


def document_problem(document: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """(path, reason) of the first thing wrong in a parsed JSON document, or None.

    Wrong: nesting deeper than ``max_depth``, or a key or string that ``text_problem``
    refuses (string values may be multi-line; keys may not). Walks with an explicit
    stack, so a hostile document cannot exhaust the interpreter's recursion limit.
    """
    for path, depth, value, is_key in _walk(document):
        if depth > max_depth:
            return path, f"nested deeper than {max_depth} levels"
        if isinstance(value, str):
            problem = text_problem(value, multiline=not is_key)
            if problem is not None:
                return path, problem
    return None


def _walk(document: Any) -> Iterator[tuple[str, int, Any, bool]]:
    stack: list[tuple[str, int, Any, bool]] = [("", 0, document, False)]
    while stack:
        path, depth, value, is_key = stack.pop()
        yield path or "$", depth, value, is_key
        if isinstance(value, dict):
            for key, item in value.items():
                here = f"{path}.{key}" if isinstance(key, str) and not text_problem(key) else f"{path}.?"
                stack.append((here, depth + 1, item, False))
                stack.append((here, depth + 1, key, True))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", depth + 1, item, False) for i, item in enumerate(value))
