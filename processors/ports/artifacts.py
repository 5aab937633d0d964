"""The artifact store port: bytes under validated keys (lab YAML, grading evidence, reports).

The port is async because the S3 adapter is (aiobotocore); ``adapters.artifacts.blocking``
wraps any store for synchronous callers (FastAPI ``def`` endpoints run in worker threads).

A key is a relative, ``/``-separated path: no empty, ``.`` or ``..`` segment, no leading
``/``, no backslash or control character. ``put`` returns the artifact's URI
(``file:///…`` for the local store, ``s3://bucket/key`` for S3); ``get``, ``exists`` and
``delete`` take either that URI or the bare key, and refuse URIs of another store.

Lab YAML is content-addressed: ``put_lab_yaml`` stores it under
``lab-yaml/<definition name>/<sha256>.yaml`` after checking the hash, and writes nothing
when that key already exists (publishing the same YAML again is a no-op).
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from typing import Protocol, runtime_checkable
from urllib.parse import quote

LAB_YAML_PREFIX = "lab-yaml"
LAB_YAML_CONTENT_TYPE = "application/yaml"
MAX_KEY_LENGTH = 900  # S3 allows 1024 bytes; leave room for a configured prefix

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


class ArtifactError(Exception):
    """An artifact store call failed."""

    retryable: bool = False

    def __init__(self, detail: str, *, retryable: bool | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable


class ArtifactNotFound(ArtifactError):
    """Nothing is stored under that key."""


class InvalidArtifactKey(ArtifactError, ValueError):
    """The key (or URI) is not acceptable: unsafe path, or another store's URI."""


class ArtifactIntegrityError(ArtifactError, ValueError):
    """The content does not match the hash it was published with."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path, else raise ``InvalidArtifactKey``."""
    if not key or len(key.encode()) > MAX_KEY_LENGTH:
        raise InvalidArtifactKey(f"artifact key must be 1..{MAX_KEY_LENGTH} bytes: {key!r}")
    if key.startswith("/") or _FORBIDDEN.search(key) or re.match(r"^[A-Za-z]:", key):
        raise InvalidArtifactKey(f"artifact key must be a relative path: {key!r}")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise InvalidArtifactKey(f"artifact key has an empty, '.' or '..' segment: {key!r}")
    return key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lab_yaml_key(definition_name: str, sha256: str) -> str:
    """``lab-yaml/<quoted definition name>/<sha256>.yaml`` (the name becomes one segment)."""
    if not _SHA256.fullmatch(sha256):
        raise InvalidArtifactKey(f"sha256 must be 64 lowercase hex digits: {sha256!r}")
    segment = quote(definition_name, safe="-_.~")
    return validate_key(f"{LAB_YAML_PREFIX}/{segment}/{sha256}.yaml")


@runtime_checkable
class ArtifactStore(Protocol):
    """Port to where artifacts live. All methods are coroutines."""

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Store ``data`` under ``key`` (replacing it); return its URI."""
        ...

    async def get(self, uri_or_key: str) -> bytes:
        """The stored bytes; ``ArtifactNotFound`` when absent."""
        ...

    async def exists(self, uri_or_key: str) -> bool: ...

    async def delete(self, uri_or_key: str) -> None:
        """Remove the artifact; a no-op when absent."""
        ...

    async def put_lab_yaml(self, definition_name: str, sha256: str, text: str) -> str:
        """Store a definition's lab YAML, content-addressed; return its URI."""
        ...

    def uri_for(self, key: str) -> str:
        """The URI ``put`` returns for ``key`` (no I/O)."""
        ...


class BaseArtifactStore(ABC):
    """What every store shares: the content-addressed lab YAML on top of put/exists."""

    @abstractmethod
    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...

    @abstractmethod
    async def get(self, uri_or_key: str) -> bytes: ...

    @abstractmethod
    async def exists(self, uri_or_key: str) -> bool: ...

    @abstractmethod
    async def delete(self, uri_or_key: str) -> None: ...

    @abstractmethod
    def uri_for(self, key: str) -> str: ...

    async def put_lab_yaml(self, definition_name: str, sha256: str, text: str) -> str:
        key = lab_yaml_key(definition_name, sha256)  # validates the name and the hash first
        data = text.encode("utf-8")
        actual = sha256_hex(data)
        if actual != sha256:
            raise ArtifactIntegrityError(
                f"lab YAML of {definition_name!r} hashes to {actual}, not {sha256}"
            )
        if await self.exists(key):
            return self.uri_for(key)
        return await self.put(key, data, LAB_YAML_CONTENT_TYPE)
