"""The behaviour every ``ArtifactStore`` must have.

A store's test module subclasses ``ArtifactStoreContract`` (as ``Test…``) and provides a
``store`` fixture; ``uri_scheme`` names the URIs it hands out.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from processors.ports.artifacts import (
    ArtifactIntegrityError,
    ArtifactNotFound,
    ArtifactStore,
    InvalidArtifactKey,
    lab_yaml_key,
)

LAB_YAML = "lab:\n  title: CCNA exam 1\nnodes:\n  - id: n0\n    label: R1\n"
LAB_SHA = hashlib.sha256(LAB_YAML.encode()).hexdigest()

UNSAFE_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "a\x00b",
    "C:/windows",
    "x" * 1000,
]


@pytest.mark.anyio
class ArtifactStoreContract:
    uri_scheme: str = ""

    async def test_is_an_artifact_store(self, store: ArtifactStore) -> None:
        assert isinstance(store, ArtifactStore)

    async def test_put_then_get_by_uri_and_by_key(self, store: ArtifactStore) -> None:
        uri = await store.put("reports/r1.json", b'{"score": 80}', "application/json")
        assert uri.startswith(f"{self.uri_scheme}://")
        assert uri == store.uri_for("reports/r1.json")
        assert await store.get(uri) == b'{"score": 80}'
        assert await store.get("reports/r1.json") == b'{"score": 80}'
        assert await store.exists(uri) and await store.exists("reports/r1.json")

    async def test_put_replaces(self, store: ArtifactStore) -> None:
        await store.put("k", b"old")
        await store.put("k", b"new and longer")
        assert await store.get("k") == b"new and longer"

    async def test_binary_and_empty_content_round_trip(self, store: ArtifactStore) -> None:
        blob = bytes(range(256)) * 64
        await store.put("bin/blob", blob)
        await store.put("bin/empty", b"")
        assert await store.get("bin/blob") == blob
        assert await store.get("bin/empty") == b""

    async def test_missing_artifact(self, store: ArtifactStore) -> None:
        assert not await store.exists("nope/missing.txt")
        with pytest.raises(ArtifactNotFound):
            await store.get("nope/missing.txt")
        with pytest.raises(ArtifactNotFound):
            await store.get(store.uri_for("nope/missing.txt"))

    async def test_delete_is_idempotent(self, store: ArtifactStore) -> None:
        uri = await store.put("gone/soon", b"x")
        await store.delete(uri)
        assert not await store.exists("gone/soon")
        await store.delete(uri)
        await store.delete("never/there")

    async def test_a_prefix_is_not_an_artifact(self, store: ArtifactStore) -> None:
        await store.put("dir/file", b"x")
        assert not await store.exists("dir")
        with pytest.raises(ArtifactNotFound):
            await store.get("dir")

    async def test_unsafe_keys_are_refused(self, store: ArtifactStore) -> None:
        # One test, not one per key: a store fixture can be costly (S3 creates a bucket).
        for key in UNSAFE_KEYS:
            for call in (store.put(key, b"x"), store.get(key), store.exists(key), store.delete(key)):
                with pytest.raises(InvalidArtifactKey):
                    await call

    async def test_foreign_uris_are_refused(self, store: ArtifactStore) -> None:
        for uri in ["https://example.com/x", "s3x://b/k", "gs://bucket/key"]:
            with pytest.raises(InvalidArtifactKey):
                await store.get(uri)

    async def test_lab_yaml_is_content_addressed(self, store: ArtifactStore) -> None:
        uri = await store.put_lab_yaml("ccna/exam 1", LAB_SHA, LAB_YAML)
        assert uri.endswith(f"/{LAB_SHA}.yaml")
        assert uri == store.uri_for(f"lab-yaml/ccna%2Fexam%201/{LAB_SHA}.yaml")
        assert (await store.get(uri)).decode() == LAB_YAML
        assert await store.put_lab_yaml("ccna/exam 1", LAB_SHA, LAB_YAML) == uri

    async def test_lab_yaml_publish_again_writes_nothing(self, store: ArtifactStore) -> None:
        uri = await store.put_lab_yaml("d", LAB_SHA, LAB_YAML)
        await store.put(lab_yaml_key("d", LAB_SHA), b"tampered")  # shows the 2nd publish writes nothing
        await store.put_lab_yaml("d", LAB_SHA, LAB_YAML)
        assert await store.get(uri) == b"tampered"

    async def test_lab_yaml_hash_must_match(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactIntegrityError):
            await store.put_lab_yaml("d", "0" * 64, LAB_YAML)
        with pytest.raises(InvalidArtifactKey):
            await store.put_lab_yaml("d", "not-a-hash", LAB_YAML)
        with pytest.raises(InvalidArtifactKey):
            await store.put_lab_yaml("..", LAB_SHA, LAB_YAML)

    async def test_concurrent_writers_leave_one_whole_value(self, store: ArtifactStore) -> None:
        values = [bytes([n]) * 50_000 for n in range(8)]
        await asyncio.gather(*(store.put("race", value) for value in values))
        assert await store.get("race") in values
