"""Bearer-token authentication and roles.

``LRM_TOKENS`` holds ``role:token[:subject]`` entries. When it is empty, ``lablet serve``
generates one token per role into ``$LRM_DATA_DIR/tokens.json`` (mode 0600). Only SHA-256
hashes of tokens are kept in memory, and lookups compare hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from api.problems import ApiProblem


class Role(StrEnum):
    ADMIN = "admin"
    INSTRUCTOR = "instructor"
    USER = "user"
    GRADER = "grader"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    role: Role
    subject: str

    @property
    def actor(self) -> str:
        """How the caller is recorded in event metadata."""
        return f"{self.role.value}:{self.subject}"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenRegistry:
    """Known tokens by hash; verification walks every entry so timing does not leak which matched."""

    def __init__(self, entries: list[tuple[Role, str, str]]) -> None:
        self._entries = [(_digest(token), Principal(role, subject)) for role, token, subject in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> Principal | None:
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, presented):
                found = principal
        return found

    @classmethod
    def parse(cls, spec: str) -> TokenRegistry:
        entries: list[tuple[Role, str, str]] = []
        for raw in (part.strip() for part in spec.split(",")):
            if not raw:
                continue
            pieces = raw.split(":", 2)
            if len(pieces) < 2 or not pieces[1]:
                raise ValueError(f"LRM_TOKENS entry {raw.split(':')[0]!r}: expected role:token[:subject]")
            try:
                role = Role(pieces[0])
            except ValueError:
                raise ValueError(
                    f"LRM_TOKENS: unknown role {pieces[0]!r} (roles: {', '.join(r.value for r in Role)})"
                ) from None
            subject = pieces[2] if len(pieces) == 3 and pieces[2] else role.value
            entries.append((role, pieces[1], subject))
        return cls(entries)


def generate_tokens(path: Path) -> dict[str, dict[str, str]]:
    """One token per role, written once to ``path`` (0600) and reused on the next start.

    ``lablet serve --workers N`` starts several processes on one data directory at once: the
    file is written whole beside ``path`` and linked into place (atomic, and refused when
    another process got there first, whose tokens are then used), so no process reads a
    half-written file or keeps tokens the file does not hold."""
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = {
        role.value: {"token": f"lrm_{role.value}_{secrets.token_urlsafe(24)}", "subject": role.value}
        for role in Role
    }
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(tokens, handle, indent=2)
        os.link(draft, path)
    except FileExistsError:
        return json.loads(path.read_text())
    finally:
        draft.unlink(missing_ok=True)
    return tokens


def registry_from_settings(tokens_spec: str, data_dir: Path) -> tuple[TokenRegistry, Path | None]:
    if tokens_spec.strip():
        return TokenRegistry.parse(tokens_spec), None
    path = data_dir / "tokens.json"
    generated = generate_tokens(path)
    return TokenRegistry([(Role(r), v["token"], v["subject"]) for r, v in generated.items()]), path


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "Unauthorized", "a bearer token is required",
                         headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def principal_for(request: Request, token: str) -> Principal:
    """The principal of a presented token (401 if unknown); remembered on the request."""
    registry: TokenRegistry = request.app.state.container.tokens
    principal = registry.verify(token)
    if principal is None:
        raise ApiProblem(401, "Unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


def current_principal(request: Request) -> Principal:
    return principal_for(request, _bearer(request))


def check_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    """403 unless the principal holds one of ``roles`` (admin always may)."""
    allowed = {Role.ADMIN, *roles}
    if principal.role not in allowed:
        raise ApiProblem(403, "Forbidden",
                         f"role {principal.role.value} may not do this "
                         f"(allowed: {', '.join(sorted(r.value for r in allowed))})")
    return principal


def require(*roles: Role):  # noqa: ANN201 - a FastAPI dependency factory
    """Dependency: the caller must hold one of ``roles`` (admin always may)."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return check_role(principal, roles)

    return dependency


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
