"""An artifact store in a local directory (default ``$LRM_DATA_DIR/artifacts``).

Writes are atomic and durable: a temporary file in the target directory, fsync, rename
over the target, fsync of the directory. A reader sees the old bytes or the new ones,
never half of them, and a crash after ``put`` returns loses nothing.
File work runs in a thread (``asyncio.to_thread``) so the event loop never waits on a disk.
The content type is not kept (a file has none); ``get`` returns the bytes only.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from processors.ports.artifacts import (
    ArtifactError,
    ArtifactNotFound,
    BaseArtifactStore,
    InvalidArtifactKey,
    validate_key,
)

TEMP_PREFIX = ".tmp-"


class LocalArtifactStore(BaseArtifactStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> LocalArtifactStore:
        return cls(Path(data_dir) / "artifacts")

    def uri_for(self, key: str) -> str:
        return (self.root / validate_key(key)).as_uri()

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self.root / validate_key(key)
        await asyncio.to_thread(_write_atomically, path, bytes(data))
        return path.as_uri()

    async def get(self, uri_or_key: str) -> bytes:
        path = self._path(uri_or_key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFound(f"no artifact {uri_or_key!r}") from None
        except OSError as error:
            raise ArtifactError(f"reading {uri_or_key!r}: {error}") from error

    async def exists(self, uri_or_key: str) -> bool:
        return self._path(uri_or_key).is_file()

    async def delete(self, uri_or_key: str) -> None:
        path = self._path(uri_or_key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except (IsADirectoryError, PermissionError) as error:
            raise ArtifactError(f"deleting {uri_or_key!r}: {error}") from error

    def _path(self, uri_or_key: str) -> Path:
        if uri_or_key.startswith("file:"):
            parsed = urlparse(uri_or_key)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidArtifactKey(f"not a local file URI: {uri_or_key!r}")
            path = Path(url2pathname(parsed.path))  # decodes %XX once
            try:
                key = path.relative_to(self.root).as_posix()
            except ValueError:
                raise InvalidArtifactKey(f"{uri_or_key!r} is outside {self.root}") from None
            return self.root / validate_key(key)
        if "://" in uri_or_key:
            raise InvalidArtifactKey(f"not a key or a file URI: {uri_or_key!r}")
        return self.root / validate_key(uri_or_key)


def _write_atomically(path: Path, data: bytes) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
