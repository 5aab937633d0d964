"""Reading CML's answers: configurations, node states, serial consoles and error texts.

Fields CML may leave out (see docs/adapters/cml.md, "Fields CML may omit") are read here with
the fallback each one gets.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.cml.topology import main_configuration
from processors.ports.cml import NodeConsole, NodeState

ACTIVE_STATES = frozenset({NodeState.QUEUED, NodeState.STARTED, NodeState.BOOTED})


def serial_consoles(node: dict[str, Any]) -> list[NodeConsole] | None:
    """The consoles a node object lists in ``operational.serial_consoles`` (CML >= 2.7 with
    ``operational=true``); None when the controller did not say, so the caller asks per line."""
    operational = node.get("operational")
    if not isinstance(operational, dict) or not isinstance(operational.get("serial_consoles"), list):
        return None
    consoles = []
    for line, entry in enumerate(operational["serial_consoles"]):
        if isinstance(entry, dict) and entry.get("console_key"):
            number = entry.get("device_number")
            consoles.append(NodeConsole(str(node["label"]), int(number) if number is not None else line,
                                        str(entry["console_key"])))
    return consoles


def may_be_running(node: dict[str, Any]) -> bool:
    """False only when the node object says it is not running; a missing state may be running."""
    state = node.get("state")
    return state is None or state in ACTIVE_STATES


def configuration_text(configuration: Any) -> str:
    """A node's configuration: a string (older CML) or a list of ``{name, content}`` files."""
    if isinstance(configuration, str):
        return configuration
    if isinstance(configuration, list):
        return main_configuration(configuration)
    return ""


def node_state(raw: Any) -> NodeState:
    """CML's node state; an unknown or missing one counts as running but not booted, so a lab
    is never reported ready on a state this client does not understand."""
    try:
        return NodeState(raw)
    except ValueError:
        return NodeState.STARTED


def description(response: httpx.Response) -> str:
    """CML's error text: ``{"code", "description"}``, a bare JSON string, or the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        return str(body.get("description") or body.get("detail") or body)
    return str(body)


def retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
