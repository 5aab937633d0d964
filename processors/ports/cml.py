"""Port to Cisco Modeling Labs (CML 2.x): import, start, watch, collect and tear down labs.

Processors (the instance controller) drive labs through ``CmlGateway`` only. Two adapters
implement it (``adapters/cml``): a simulated CML, the default, and a REST client for a real
controller. Both keep CML's own rules, so a controller written against the simulation
behaves the same against a real host:

- start, stop and wipe are asynchronous on CML; ``start_lab`` returns at once (then call
  ``wait_until_booted``), while ``stop_lab`` and ``wipe_lab`` return once the lab settled;
- a lab can be wiped only when stopped and deleted only when wiped; ``delete_lab`` does the
  whole teardown (stop → wipe → delete) and accepts a lab that is already gone;
- imports are not idempotent on CML; callers put the instance id in the lab title and call
  ``find_lab_by_title`` before importing again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CmlEndpoint:
    """How to reach the CML controller of one worker (in production ``https://<worker ip>/``).

    ``verify`` is True (system CAs), False (CML's self-signed certificate, not checked) or the
    path of a CA bundle.
    """

    worker_id: str
    base_url: str
    username: str
    password: str = field(repr=False)
    verify: bool | str = True


class LabStatus(StrEnum):
    """The three states CML reports for a lab (``GET labs/{id}/state``)."""

    DEFINED_ON_CORE = "DEFINED_ON_CORE"  # never started, or wiped
    STOPPED = "STOPPED"
    STARTED = "STARTED"


class NodeState(StrEnum):
    DEFINED_ON_CORE = "DEFINED_ON_CORE"
    STOPPED = "STOPPED"
    STARTED = "STARTED"  # VM running, boot not yet detected
    QUEUED = "QUEUED"  # waiting in the launch queue
    BOOTED = "BOOTED"
    DISCONNECTED = "DISCONNECTED"  # compute host lost


@dataclass(frozen=True)
class LabState:
    """A snapshot of one lab: its state, whether it converged, and each node's state by label."""

    lab_id: str
    status: LabStatus
    converged: bool
    nodes: Mapping[str, NodeState] = field(default_factory=dict)

    @property
    def booted(self) -> bool:
        """Started and every node booted: the lab is ready for its user."""
        return (
            self.status is LabStatus.STARTED
            and self.converged
            and all(state is NodeState.BOOTED for state in self.nodes.values())
        )


@dataclass(frozen=True)
class NodeConsole:
    """One serial console of a running node: ``key`` opens it in CML's web console, and
    ``open /<lab>/<node>/<line>`` on the controller's SSH console server (port 22) reaches it too."""

    node: str  # the node's label
    line: int
    key: str


class CmlError(Exception):
    """Base of every CML failure; ``retryable`` tells the caller whether trying later may help."""

    retryable = False

    def __init__(self, worker_id: str, detail: str) -> None:
        super().__init__(f"CML on worker {worker_id}: {detail}")
        self.worker_id = worker_id
        self.detail = detail


class CmlUnavailable(CmlError):
    """The controller did not answer usefully (network error, timeout, 5xx, 429, still starting).

    ``retry_after`` is the server's hint in seconds (``Retry-After``), when it gave one.
    """

    retryable = True

    def __init__(self, worker_id: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(worker_id, detail)
        self.retry_after = retry_after


class CircuitOpen(CmlUnavailable):
    """Calls to this worker are short-circuited after repeated failures; retry after ``retry_after``."""

    def __init__(self, worker_id: str, retry_after: float) -> None:
        super().__init__(worker_id, f"circuit open, next trial in {retry_after:.1f} s", retry_after)


class CmlLabNotFound(CmlError):
    def __init__(self, worker_id: str, lab_id: str) -> None:
        super().__init__(worker_id, f"Lab not found: {lab_id}")
        self.lab_id = lab_id


class CmlRejected(CmlError):
    """CML refused the request (4xx other than 404/429): retrying the same call will not help."""

    def __init__(self, worker_id: str, status: int, description: str) -> None:
        super().__init__(worker_id, f"{status} {description}")
        self.status = status
        self.description = description


class CmlIncompatible(CmlError):
    """The controller is not one this client can drive (too old, not CML 2.x, no version):
    an operator has to upgrade it or take the worker out of service; retrying will not help."""

    def __init__(self, worker_id: str, version: str | None, detail: str) -> None:
        super().__init__(worker_id, detail)
        self.version = version


class CmlWaitTimeout(CmlError):
    """A lab did not reach the awaited state in time (boot, stop or wipe did not converge)."""

    retryable = True

    def __init__(self, worker_id: str, lab_id: str, awaited: str, last: LabState | None) -> None:
        seen = f"{last.status} converged={last.converged}" if last else "unknown"
        super().__init__(worker_id, f"lab {lab_id} not {awaited} in time (last seen: {seen})")
        self.lab_id = lab_id
        self.last = last


@runtime_checkable
class CmlGateway(Protocol):
    async def import_lab(self, worker: CmlEndpoint, lab_yaml: str, title: str) -> str:
        """Import a lab topology (CML YAML) under ``title``; returns the new lab id."""

    async def start_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        """Ask CML to start every node; returns before the nodes boot."""

    async def lab_state(self, worker: CmlEndpoint, lab_id: str) -> LabState: ...

    async def wait_until_booted(self, worker: CmlEndpoint, lab_id: str, timeout: float) -> LabState:
        """Return once every node booted; ``CmlWaitTimeout`` after ``timeout`` seconds,
        ``CmlRejected`` if the lab is not started (it would never boot)."""

    async def stop_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        """Stop every node and wait until the lab is stopped (a lab never started is fine)."""

    async def wipe_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        """Wipe a stopped lab back to DEFINED_ON_CORE; ``CmlRejected`` while it runs."""

    async def delete_lab(self, worker: CmlEndpoint, lab_id: str) -> None:
        """Stop, wipe and delete the lab, skipping steps already done; an absent lab is fine."""

    async def node_configs(self, worker: CmlEndpoint, lab_id: str) -> dict[str, str]:
        """Extract each booted node's running configuration; returns ``{node label: text}``.

        Nodes that cannot be extracted (not booted, no extraction support) report the
        configuration CML has stored for them, and are left out when that is empty.
        """

    async def consoles(self, worker: CmlEndpoint, lab_id: str) -> list[NodeConsole]:
        """The serial consoles of the lab's running nodes, with CML's console keys.

        Nodes without a console (``unmanaged_switch``, ``external_connector``) or not running
        have none; the keys change each time a node starts.
        """

    async def find_lab_by_title(self, worker: CmlEndpoint, title: str) -> str | None:
        """The id of a lab with exactly this title, or None."""

    async def list_labs(self, worker: CmlEndpoint) -> list[str]: ...
