from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.artifacts.local import TEMP_PREFIX, LocalArtifactStore
from processors.ports.artifacts import InvalidArtifactKey
from tests.artifacts.contract import ArtifactStoreContract


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore.in_data_dir(tmp_path)


class TestLocalArtifactStore(ArtifactStoreContract):
    uri_scheme = "file"


pytestmark = pytest.mark.anyio


async def test_files_live_under_the_data_dir(store: LocalArtifactStore, tmp_path: Path) -> None:
    uri = await store.put("a/b.txt", b"hello")
    assert (tmp_path / "artifacts" / "a" / "b.txt").read_bytes() == b"hello"
    assert uri == (tmp_path / "artifacts" / "a" / "b.txt").resolve().as_uri()


async def test_no_temporary_files_are_left_behind(store: LocalArtifactStore) -> None:
    for n in range(5):
        await store.put("a/b.txt", str(n).encode())
    assert [p.name for p in (store.root / "a").iterdir()] == ["b.txt"]


async def test_a_failed_write_keeps_the_old_content(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put("k", b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await store.put("k", b"new")
    monkeypatch.undo()
    assert await store.get("k") == b"old"
    assert not any(p.name.startswith(TEMP_PREFIX) for p in store.root.iterdir())


async def test_file_uris_outside_the_root_are_refused(store: LocalArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"s")
    with pytest.raises(InvalidArtifactKey):
        await store.get((tmp_path / "secret").as_uri())
    with pytest.raises(InvalidArtifactKey):
        await store.get("file://otherhost/etc/passwd")


async def test_another_store_instance_reads_what_was_written(store: LocalArtifactStore) -> None:
    uri = await store.put("x/y", b"durable")
    assert await LocalArtifactStore(store.root).get(uri) == b"durable"
