"""The fake controller's state and the knobs tests turn.

Besides the labs: the account (one admin user), the JWTs it handed out with their expiry, what
``system_information`` reports (``version``, ``ready``), and the delays that make CML's
asynchronous operations take time (``transition_seconds`` per node and step).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field

from tests.cml.fake_cml.errors import CmlHttpError
from tests.cml.fake_cml.faults import FaultPlan
from tests.cml.fake_cml.lab import FakeLab, Owner

CML_VERSION = "2.10.0+build.21"


@dataclass
class FakeCml(FaultPlan):
    username: str = "admin"
    password: str = "secret"
    fullname: str = "CML Administrator"
    user_id: str = "00000000-0000-4000-8000-000000000001"
    version: str = CML_VERSION
    ready: bool = True  # False: no compute can start nodes yet (after a controller boot)
    transition_seconds: float = 0.02  # one boot/stop/wipe step per node
    token_lifetime_seconds: float | None = None  # None: tokens last until logout or expire_tokens()
    config_as_string: bool = False  # older controllers return configuration as a plain string
    node_objects_have_state: bool = True  # if False, clients must read lab_element_state
    node_objects_have_operational: bool = True  # if False, operational=true is ignored (older CML)
    tokens: dict[str, float] = field(default_factory=dict)  # JWT -> monotonic expiry (inf: none)
    labs: dict[str, FakeLab] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(19))
    skew: float = 0.0  # seconds the controller's clock is ahead of the test's (advance())

    def reset(self) -> None:
        self.clear()
        with self.lock:
            self.tokens.clear()
            self.labs.clear()
            self.version, self.ready, self.skew = CML_VERSION, True, 0.0
            self.transition_seconds = 0.02
            self.token_lifetime_seconds = None
            self.config_as_string = False
            self.node_objects_have_state = True
            self.node_objects_have_operational = True

    # -- accounts and tokens ------------------------------------------------------------------

    @property
    def owner(self) -> Owner:
        return Owner(self.user_id, self.username, self.fullname)

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        lifetime = self.token_lifetime_seconds
        with self.lock:
            self.tokens[token] = self.now() + lifetime if lifetime is not None else float("inf")
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
            if expires is not None and expires <= self.now():
                del self.tokens[token]
                return False
            return expires is not None

    def revoke(self, token: str, *, all_sessions: bool = False) -> None:
        with self.lock:
            if all_sessions:
                self.tokens.clear()  # one account: every session is this user's
            else:
                self.tokens.pop(token, None)

    def expire_tokens(self) -> None:
        """Server-side expiry of every token: the next call with one gets a 401."""
        with self.lock:
            self.tokens.clear()

    # -- labs ---------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() + self.skew

    def advance(self, seconds: float) -> None:
        """Let time pass on the controller: tokens age and labs move on at once."""
        self.skew += seconds

    def lab(self, lab_id: str) -> FakeLab:
        lab = self.labs.get(lab_id)
        if lab is None:
            raise CmlHttpError(404, f"Lab not found: {lab_id}")
        return lab

    def node_of(self, lab: FakeLab, node_id: str) -> str:
        if node_id not in lab.nodes:
            raise CmlHttpError(404, f"Node not found: {node_id}")
        return node_id
